"""Errors that mean "the user asked for something that cannot work".

Library code raises :class:`UserError` (or a subclass) for bad input: a missing
file, a malformed row, an unknown model name. The CLI prints its message as one
line on stderr and exits with status 2; it never shows a traceback for these.
Anything else that escapes is a bug in seqtasks and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input, reported as one line.

    The message says what was wrong, where (``file:line`` or field name) and
    what was expected, e.g. ``data.tsv:17: expected 2 tab-separated fields,
    got 3``.
    """


class DataError(UserError):
    """A dataset that cannot be read: missing, malformed, empty or one-class."""


class ConfigError(UserError):
    """An unknown config key or a value of the wrong type or range."""


class ExportError(UserError):
    """A directory that is not a seqtasks export (or has no version in it)."""
