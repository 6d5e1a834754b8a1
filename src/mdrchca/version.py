"""The package's version, importable from every layer (``mdrchca/__init__`` sits above them all)."""

__version__ = "0.1.0"
