"""The conformance suite shipped as a pytest plugin (placeholder until it lands)."""
