"""Row readers for tabular data files: TSV, CSV, JSONL and Parquet.

Each reader yields :class:`Record` objects (a dict of fields plus the 1-based
line number where the record starts; for Parquet the 1-based row number) and
reports malformed input through a :class:`BadRows` collector, which raises a
:class:`~seqtasks.errors.DataError` naming ``file:line`` (``on_bad_rows="error"``,
the default) or counts the row and skips it (``"skip"``):

- ``tsv``: a header row, then one record per line, fields split on tabs
  exactly (no quoting; the GLUE/SST-2 convention). A row with a different
  number of fields than the header is an error.
- ``csv``: RFC 4180 quoting via :mod:`csv`; a header row is required.
- ``jsonl``: one JSON object per non-blank line.
- ``parquet``: read with pyarrow; locations are ``file:row N`` (Parquet has
  no lines), and a null field is reported like an empty one.

Text files must be UTF-8 (a BOM is accepted); other bytes are an error naming
the line. With ``skip``, a row holding bad bytes is skipped like any other bad
row (the header must still be valid), but malformed CSV quoting still stops
the read: after it, where the next record starts is not known.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from seqtasks.errors import DataError
from seqtasks.io import decode_utf8

FORMATS = ("tsv", "csv", "jsonl", "parquet")
ON_BAD_ROWS = ("error", "skip")
_EXTENSIONS = {
    ".tsv": "tsv",
    ".tab": "tsv",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_SHOWN_BAD_ROWS = 5
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes kept by errors="surrogateescape"


@dataclasses.dataclass(frozen=True)
class Record:
    """One row of a data file: its fields and where it came from."""

    fields: dict[str, Any]
    line: int


class BadRows:
    """Where malformed rows go: raised (``error``) or counted and skipped (``skip``).

    Args:
        path: the data file, for messages.
        mode: ``error`` or ``skip``.
        unit: ``line`` for text files, ``row`` for Parquet.
    """

    def __init__(self, path: str, mode: str = "error", unit: str = "line"):
        if mode not in ON_BAD_ROWS:
            raise DataError(
                f"--on-bad-rows: expected one of {', '.join(ON_BAD_ROWS)}; received: {mode!r}"
            )
        self.path, self.mode, self.unit = path, mode, unit
        self.rows: list[tuple[int, str]] = []

    def where(self, line: int) -> str:
        """``file:line``, or ``file:row N`` for Parquet."""
        return f"{self.path}:row {line}" if self.unit == "row" else f"{self.path}:{line}"

    def report(self, line: int, reason: str, message: str) -> None:
        """Raise ``where(line): message`` with ``error``; with ``skip`` remember ``reason``.

        Raises:
            DataError: when the mode is ``error``.
        """
        if self.mode == "error":
            raise DataError(f"{self.where(line)}: {message}")
        self.rows.append((line, reason))

    def summary(self) -> str | None:
        """``skipped 3 bad rows of f.tsv (lines 4, 9, 17): wrong number of fields, empty text``.

        ``None`` when nothing was skipped; the first five locations are listed.
        """
        if not self.rows:
            return None
        count = len(self.rows)
        lines = ", ".join(str(line) for line, _ in self.rows[:_SHOWN_BAD_ROWS])
        more = ", ..." if count > _SHOWN_BAD_ROWS else ""
        unit = self.unit if count == 1 else f"{self.unit}s"
        reasons = ", ".join(dict.fromkeys(reason for _, reason in self.rows))
        rows = "row" if count == 1 else "rows"
        return f"skipped {count} bad {rows} of {self.path} ({unit} {lines}{more}): {reasons}"


def detect_format(path: str, format: str | None = None) -> str:
    """The record format for ``path``: ``format`` if given, else from the extension.

    Raises:
        DataError: if neither names one of ``tsv``, ``csv``, ``jsonl``, ``parquet``.
    """
    if format and format != "auto":
        if format not in FORMATS:
            raise DataError(f"--format: expected one of {', '.join(FORMATS)}; received: {format!r}")
        return format
    ext = os.path.splitext(path)[1].lower()
    if ext not in _EXTENSIONS:
        raise DataError(
            f"{path}: cannot tell the data format from the extension {ext or '(none)'!r}; "
            f"expected .tsv, .csv, .jsonl or .parquet, a folder, or pass --format"
        )
    return _EXTENSIONS[ext]


def read_records(
    path: str, format: str, bad_rows: BadRows | None = None, columns: list[str] | None = None
) -> Iterator[Record]:
    """Yield the records of ``path`` in file order.

    Args:
        path: a UTF-8 text file, or a Parquet file.
        format: ``tsv``, ``csv``, ``jsonl`` or ``parquet``.
        bad_rows: where malformed rows go (default: a new collector that raises).
        columns: Parquet only: read just these columns (default: all).

    Raises:
        DataError: unreadable file, bad encoding, missing header, malformed row
            (rows are skipped instead when ``bad_rows`` skips).
    """
    bad_rows = bad_rows or BadRows(path)
    if format == "parquet":
        yield from _read_parquet(path, bad_rows, columns)
        return
    readers = {"tsv": _read_tsv, "csv": _read_csv, "jsonl": _read_jsonl}
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    text = decode_utf8(raw, path, keep_bad_bytes=bad_rows.mode == "skip")
    yield from readers[format](path, text, bad_rows)


def parquet_columns(path: str) -> list[str]:
    """The column names of a Parquet file (its schema only is read).

    Raises:
        DataError: the file cannot be read or is not Parquet.
    """
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable Parquet file: {_first_line(e)}") from None


def pick_column(
    path: str,
    given: str | None,
    candidates: tuple[str, ...],
    fields,
    kind: str,
    ignore_case: bool = False,
) -> str:
    """The field of ``fields`` (names) that holds ``kind``: ``given``, else the first candidate.

    Args:
        path: the data file, for messages.
        given: the name the user passed (``--<kind>-column``); must exist as given.
        candidates: default names, tried in order.
        fields: the names found (a header, a JSON object's keys, a Parquet schema).
        kind: ``text``, ``label``, ``source``, ... for messages and the flag's name.
        ignore_case: match the candidates regardless of case (``Image`` for ``image``).

    Raises:
        DataError: ``given`` is not among ``fields``, or no candidate is; the message
            lists the columns found.
    """
    names = list(fields)
    if given is not None:
        if given not in fields:
            raise DataError(
                f"{path}: no {kind} column {given!r}; the columns are: {', '.join(names)}"
            )
        return given
    for name in candidates:
        if name in fields:
            return name
        if ignore_case:
            for found in names:
                if found.lower() == name.lower():
                    return found
    article = "an" if kind[0] in "aeiou" else "a"
    raise DataError(
        f"{path}: cannot find {article} {kind} column (tried {', '.join(candidates)}); "
        f"the columns are: {', '.join(names)}; pass --{kind}-column"
    )


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def has_bad_bytes(text: str) -> bool:
    """True if ``text`` holds bytes that were not UTF-8 (decoded with ``surrogateescape``)."""
    return _UNDECODABLE.search(text) is not None


def _undecodable(path: str, line: int, text: str, bad_rows: BadRows) -> bool:
    """Report a line holding non-UTF-8 bytes (only possible with ``skip``); True if it did."""
    if not _UNDECODABLE.search(text):
        return False
    if line == 1:  # the header cannot be skipped
        raise DataError(f"{path}:1: not valid UTF-8 in the header; expected UTF-8 text")
    bad_rows.report(line, "not valid UTF-8", "not valid UTF-8; expected UTF-8 text")
    return True


def _read_tsv(path: str, text: str, bad_rows: BadRows) -> Iterator[Record]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return
    _undecodable(path, 1, lines[0], bad_rows)
    header = [h.strip() for h in lines[0].rstrip("\r").split("\t")]
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip() or _undecodable(path, number, line, bad_rows):
            continue
        values = line.split("\t")
        if len(values) != len(header):
            bad_rows.report(
                number,
                "wrong number of fields",
                f"expected {len(header)} tab-separated fields "
                f"({', '.join(header)}), got {len(values)}",
            )
            continue
        yield Record(dict(zip(header, values)), number)


def _read_csv(path: str, text: str, bad_rows: BadRows) -> Iterator[Record]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        header = next(reader, None)
        if header is None:
            return
        _undecodable(path, 1, "".join(header), bad_rows)
        header = [h.strip() for h in header]
        start = reader.line_num + 1
        for values in reader:
            if not values or all(not v.strip() for v in values):
                pass
            elif _undecodable(path, start, "\t".join(values), bad_rows):
                pass
            elif len(values) != len(header):
                bad_rows.report(
                    start,
                    "wrong number of fields",
                    f"expected {len(header)} comma-separated fields "
                    f"({', '.join(header)}), got {len(values)}",
                )
            else:
                yield Record(dict(zip(header, values)), start)
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path}:{start}: malformed CSV (record starting here): {e}") from None


def _read_jsonl(path: str, text: str, bad_rows: BadRows) -> Iterator[Record]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if _UNDECODABLE.search(line):  # a JSONL file has no header: any line can be skipped
            bad_rows.report(number, "not valid UTF-8", "not valid UTF-8; expected UTF-8 text")
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            bad_rows.report(number, "invalid JSON", f"invalid JSON: {e.msg} (column {e.colno})")
            continue
        if not isinstance(value, dict):
            bad_rows.report(
                number,
                "not a JSON object",
                f"expected a JSON object per line; received: {type(value).__name__}",
            )
            continue
        yield Record(value, number)


def _read_parquet(path: str, bad_rows: BadRows, columns: list[str] | None) -> Iterator[Record]:
    import pyarrow.parquet as pq

    bad_rows.unit = "row"
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: not a readable Parquet file: {_first_line(e)}") from None
    row = 1
    try:
        for batch in parquet.iter_batches(columns=columns):
            for fields in batch.to_pylist():
                yield Record(fields, row)
                row += 1
    except (OSError, ValueError) as e:
        raise DataError(
            f"{bad_rows.where(row)}: cannot read Parquet data: {_first_line(e)}"
        ) from None


def with_columns(
    records: Iterable[Record],
    pick: Callable[[Any], tuple[str, ...]],
    bad_rows: BadRows,
    format: str,
) -> Iterator[tuple[tuple[str, ...], Record]]:
    """Yield ``(keys, record)``: the columns ``pick`` chooses from the first record's fields.

    A TSV/CSV record's fields are the header, so the first record decides for all.
    A JSONL object has its own keys: when the first one lacks a column, that line
    is a bad row (skipped with ``skip``, and the next object is tried) and with
    ``error`` the message names its line.

    Raises:
        DataError: from ``pick`` (a missing column), with ``file:line`` for JSONL; with
            ``skip``, pick's first error when no object has the columns.
    """
    keys = None
    first_error: DataError | None = None
    for record in records:
        if keys is None:
            try:
                keys = pick(record.fields)
            except DataError as e:
                if format != "jsonl":
                    raise
                first_error = first_error or e
                message = str(e).split(": ", 1)[-1]
                bad_rows.report(record.line, "missing field", message)
                continue
        yield keys, record
    if keys is None and first_error is not None:
        raise first_error  # no object has the column: name it, and the flag that picks another


def read_columns(
    path: str, format: str, bad_rows: BadRows, pick: Callable[[Any], tuple[str, ...]]
) -> Iterator[tuple[tuple[str, ...], Record]]:
    """Yield ``(keys, record)`` for the records of ``path``, ``keys`` chosen by ``pick``.

    Parquet: ``pick`` sees the schema and only those columns are read; other
    formats: see :func:`with_columns`.

    Raises:
        DataError: as :func:`read_records`, and from ``pick`` (a missing column).
    """
    if format == "parquet":
        keys = pick(parquet_columns(path))
        for record in read_records(path, format, bad_rows, list(keys)):
            yield keys, record
    else:
        yield from with_columns(read_records(path, format, bad_rows), pick, bad_rows, format)


def string_fields(
    record: Record,
    keys: tuple[str, ...],
    kinds: tuple[str, ...],
    bad_rows: BadRows,
    empty: Callable[[str, str], str],
) -> list[str] | None:
    """The values of ``keys`` in ``record``, or ``None`` after reporting why the row is bad.

    A missing, null, non-string or blank field is a bad row (reason ``missing <kind>``,
    ``null <kind>``, ``<kind> not a string``, ``empty <kind>``); ``empty(key, kind)``
    gives the message of a blank one. Values are returned as they are (not stripped).
    """
    values = []
    for key, kind in zip(keys, kinds):
        if key not in record.fields:
            bad_rows.report(record.line, f"missing {kind}", f"missing field {key!r}")
            return None
        value = record.fields[key]
        if value is None:
            bad_rows.report(record.line, f"null {kind}", f"field {key!r} is null")
            return None
        if not isinstance(value, str):
            bad_rows.report(
                record.line,
                f"{kind} not a string",
                f"field {key!r}: expected a string; received: {value!r}",
            )
            return None
        if not value.strip():
            bad_rows.report(record.line, f"empty {kind}", empty(key, kind))
            return None
        values.append(value)
    return values
