"""vpmu's version, apart from the package so that its modules can name it without a cycle."""

__version__ = "0.1.0"
