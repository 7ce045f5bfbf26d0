"""The conformance suite every backend must pass, shipped as a pytest plugin.

A backend lists representative configs (``Backend.conformance_configs``); the
plugin (``vpmu_core.testing.plugin``, entry point ``pytest11``) parametrizes the
suite's tests over every installed backend's configs, or over those named with
``pytest --vpmu-backend NAME``. Tests skip on a capability (``Caps``), never on a
backend's name. Collect the suite in a test module with::

    from vpmu_core.testing.suite import *  # noqa: F403
"""
