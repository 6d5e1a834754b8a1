"""Errors that carry a one-line, user-facing message (the CLI prints them without a traceback)."""

from __future__ import annotations


class MdrchcaError(Exception):
    """Base class: the message says what is wrong and how to fix it, in one line."""


class DataError(MdrchcaError):
    """Bad or missing input data; the message names the file and the fix."""


class ConfigError(MdrchcaError):
    """An invalid configuration key or value."""
