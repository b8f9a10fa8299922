"""Small file helpers: atomic writes, strict UTF-8 reading and decoding, output-path checks."""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from seqtasks.errors import ConfigError, DataError


def write_text_atomic(path: str, text: str) -> str:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and a rename; return ``path``.

    Readers never see a half-written file: they find the old one or the new one.
    """
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def write_json_atomic(path: str, value: Any) -> str:
    """Write ``value`` as indented, key-sorted JSON, atomically (see :func:`write_text_atomic`)."""
    return write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def decode_utf8(raw: bytes, where: str, keep_bad_bytes: bool = False) -> str:
    """Decode UTF-8 (a leading BOM is dropped).

    With ``keep_bad_bytes`` nothing is raised: bytes that are not UTF-8 become lone
    surrogates (``errors="surrogateescape"``), so a reader can report and skip just
    the lines holding them (:func:`seqtasks.data.records.has_bad_bytes`).

    Raises:
        DataError: ``<where>:<line>: not valid UTF-8 (byte 0x..)`` naming the
            first bad byte's line.
    """
    if keep_bad_bytes:
        return raw.decode("utf-8-sig", errors="surrogateescape")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{where}:{line}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            f"expected UTF-8 text"
        ) from None


def check_output_dir(path: str, field: str) -> None:
    """Check, without creating anything, that folder ``path`` can be created or written.

    Raises:
        ConfigError: naming ``field`` if ``path`` is empty, is an existing
            non-folder, or its nearest existing ancestor is not a writable folder.
    """
    if not path:
        raise ConfigError(f"config field '{field}': expected a folder path; received: ''")
    probe = os.path.abspath(path)
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise ConfigError(f"config field '{field}': {path} exists and is not a folder")
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ConfigError(f"config field '{field}': cannot create {path}: {probe} is a file")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"config field '{field}': cannot create or write {path} ({probe} is not writable)"
        )


def read_text(path: str, keep_bad_bytes: bool = False) -> str:
    """A UTF-8 text file (``.gz`` decompressed) as one string.

    ``keep_bad_bytes``: see :func:`decode_utf8`.

    Raises:
        DataError: if it cannot be read or is not UTF-8 (naming the line).
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if path.endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    return decode_utf8(raw, path, keep_bad_bytes)


def text_lines(text: str) -> list[str]:
    """``text`` split into lines: LF or CRLF endings, no empty last line for a final newline."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]
