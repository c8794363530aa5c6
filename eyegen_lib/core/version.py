"""The library's version (a leaf module: provenance and the CLI read it without importing the package)."""

__version__ = "0.1.0"
