"""Command-line interface (``mdrchca --help``)."""
