"""The package version, in a module of its own so any layer can read it without importing
the package (whose ``generate``/``evaluate``/``report`` sit above every layer)."""

__version__ = "0.1.0"
