"""Built-in guest workload drivers."""
