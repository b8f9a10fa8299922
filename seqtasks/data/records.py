"""Row readers for tabular text files: TSV, CSV and JSONL.

Each reader yields :class:`Record` objects (a dict of fields plus the 1-based
line number where the record starts) and reports malformed input as a
:class:`~seqtasks.errors.DataError` naming ``file:line``:

- ``tsv``: a header row, then one record per line, fields split on tabs
  exactly (no quoting; the GLUE/SST-2 convention). A row with a different
  number of fields than the header is an error.
- ``csv``: RFC 4180 quoting via :mod:`csv`; a header row is required.
- ``jsonl``: one JSON object per non-blank line.

All files must be UTF-8 (a BOM is accepted); other bytes are an error naming
the line.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Iterator
from typing import Any

from seqtasks.errors import DataError
from seqtasks.io import decode_utf8

FORMATS = ("tsv", "csv", "jsonl")
_EXTENSIONS = {".tsv": "tsv", ".tab": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclasses.dataclass(frozen=True)
class Record:
    """One row of a data file: its fields and where it came from."""

    fields: dict[str, Any]
    line: int


def detect_format(path: str, format: str | None = None) -> str:
    """The record format for ``path``: ``format`` if given, else from the extension.

    Raises:
        DataError: if neither names one of ``tsv``, ``csv``, ``jsonl``.
    """
    if format and format != "auto":
        if format not in FORMATS:
            raise DataError(f"--format: expected one of {', '.join(FORMATS)}; received: {format!r}")
        return format
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise DataError(
            f"{path}: cannot tell the data format from the extension {ext or '(none)'!r}; "
            f"expected .tsv, .csv or .jsonl, a folder, or pass --format"
        )
    return _EXTENSIONS[ext]


def read_records(path: str, format: str) -> Iterator[Record]:
    """Yield the records of ``path`` in file order.

    Args:
        path: a UTF-8 file.
        format: ``tsv``, ``csv`` or ``jsonl``.

    Raises:
        DataError: unreadable file, bad encoding, missing header, malformed row.
    """
    readers = {"tsv": _read_tsv, "csv": _read_csv, "jsonl": _read_jsonl}
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    yield from readers[format](path, decode_utf8(raw, path))


def _read_tsv(path: str, text: str) -> Iterator[Record]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return
    header = [h.strip() for h in lines[0].rstrip("\r").split("\t")]
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        values = line.split("\t")
        if len(values) != len(header):
            raise DataError(
                f"{path}:{number}: expected {len(header)} tab-separated fields "
                f"({', '.join(header)}), got {len(values)}"
            )
        yield Record(dict(zip(header, values)), number)


def _read_csv(path: str, text: str) -> Iterator[Record]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        start = reader.line_num + 1
        for values in reader:
            if not values or all(not v.strip() for v in values):
                start = reader.line_num + 1
                continue
            if len(values) != len(header):
                raise DataError(
                    f"{path}:{start}: expected {len(header)} comma-separated fields "
                    f"({', '.join(header)}), got {len(values)}"
                )
            yield Record(dict(zip(header, values)), start)
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path}:{start}: malformed CSV (record starting here): {e}") from None


def _read_jsonl(path: str, text: str) -> Iterator[Record]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{number}: invalid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(value, dict):
            raise DataError(
                f"{path}:{number}: expected a JSON object per line; received: {type(value).__name__}"
            )
        yield Record(value, number)
