"""Data fingerprints: what exactly a model was trained on."""

from __future__ import annotations

import hashlib
import os

from seqtasks.errors import DataError


def fingerprint(path: str) -> dict[str, object]:
    """Path, size in bytes and SHA-256 of a data file or folder.

    A folder's hash covers every regular file's relative path and contents,
    in sorted order. ``tfds:`` names are returned as they are (no local bytes
    to hash).

    Raises:
        DataError: if a file cannot be read.
    """
    if path.startswith("tfds:") or not os.path.exists(path):
        return {"path": path}
    digest = hashlib.sha256()
    size = 0
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                if not os.path.isfile(full):  # sockets, FIFOs, broken links
                    continue
                digest.update(os.path.relpath(full, path).encode() + b"\0")
                size += _hash_file(full, digest)
    else:
        size = _hash_file(path, digest)
    return {"path": os.path.abspath(path), "bytes": size, "sha256": digest.hexdigest()}


def _hash_file(path: str, digest) -> int:
    size = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    return size
