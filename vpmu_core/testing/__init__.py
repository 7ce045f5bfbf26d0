"""The conformance suite shipped as a pytest plugin (filled in by the core issue).

Present so that the package list in pyproject.toml installs.
"""
