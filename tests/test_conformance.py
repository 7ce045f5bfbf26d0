"""The shipped conformance suite, run over every installed backend."""

from vpmu_core.testing.suite import *  # noqa: F403
