"""Built-in virtualization strategies."""
