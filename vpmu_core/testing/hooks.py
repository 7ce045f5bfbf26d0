"""pytest hooks the conformance plugin adds (registered by ``pytest_addhooks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..plugins import PluginManager


@pytest.hookspec(firstresult=True)
def pytest_vpmu_plugin_manager(config: pytest.Config) -> PluginManager | Any | None:
    """Return the vpmu plugin manager the conformance suite runs over.

    Implement it in a ``conftest.py`` to run the suite over plugins that are not
    installed (a backend under development, the deliberately broken backends of
    vpmu's own tests). Without an answer the suite uses the installed plugins
    (:func:`vpmu_core.default_manager`). Called once per pytest session.
    """
