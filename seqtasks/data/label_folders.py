"""Labelled texts stored as label folders (the aclImdb layout): ``[aclImdb/]<split>/<label>/
*.txt``, or ``<label>/*.txt``, in a folder or a tar archive read in place.

Every sub-folder except ``unsup`` is a label; examples are yielded round-robin across
labels, so the first N stay balanced (``--max-examples``). Used by
:func:`seqtasks.data.classification.load_text_classification`.

**Groups.** aclImdb gives the movie of every review: line ``i`` of ``<split>/urls_<label>.txt``
is the IMDb page of ``<label>/<i>_<rating>.txt`` (Maas et al. 2011, the dataset's README).
When every label has such a file, each example carries its group, the title id
(``tt0453418``; the whole line when it is not an IMDb title URL), so that validation can
be carved by movie (:func:`seqtasks.data.pipeline.split_indices`); otherwise the group is
``None``.
"""

from __future__ import annotations

import itertools
import os
import re
import tarfile
import zlib
from collections.abc import Iterator

from seqtasks.errors import DataError
from seqtasks.io import decode_utf8
from seqtasks.progress import progress

DEFAULT_SPLIT = "train"
_TITLE = re.compile(r"/title/(tt\d+)")
_FILE_ID = re.compile(r"^(\d+)_[^/]*\.txt$")


def _round_robin(per_label: dict[str, list]) -> Iterator[tuple[str, object]]:
    labels = sorted(per_label)
    for row in itertools.zip_longest(*(per_label[label] for label in labels)):
        for label, item in zip(labels, row):
            if item is not None:
                yield label, item


def url_group(line: str) -> str:
    """The group of one ``urls_*.txt`` line: its IMDb title id, else the stripped line.

    >>> url_group("http://www.imdb.com/title/tt0453418/usercomments")
    'tt0453418'
    """
    match = _TITLE.search(line)
    return match.group(1) if match else line.strip()


def _file_groups(
    per_label: dict[str, list[str]], urls: dict[str, list[str]]
) -> dict[str, str] | None:
    """``{file: group}`` from each label's ``urls_<label>.txt`` lines, or ``None`` when a
    label has no urls file or a file name is not ``<id>_<rating>.txt`` with a line ``id``."""
    groups = {}
    for label, files in per_label.items():
        lines = urls.get(label)
        if lines is None:
            return None
        for file in files:
            match = _FILE_ID.match(os.path.basename(file))
            if not match or int(match.group(1)) >= len(lines):
                return None
            groups[file] = url_group(lines[int(match.group(1))])
    return groups


def _folder_root(path: str, split: str) -> str:
    """``<path>/<split>`` or ``<path>/aclImdb/<split>``; ``path`` itself only for the default split."""
    for candidate in (os.path.join(path, split), os.path.join(path, "aclImdb", split)):
        if os.path.isdir(candidate):
            return candidate
    if split != DEFAULT_SPLIT:
        raise DataError(f"{path}: no split folder {split!r} (expected {split}/<label>/*.txt)")
    return path


def folder_examples(path: str, split: str) -> Iterator[tuple[str, str, str | None]]:
    """``(text, label, group)`` of every ``.txt`` under the label folders of ``path`` (its
    ``split`` sub-folder when there is one), round-robin across labels; ``group`` is the
    movie from ``urls_<label>.txt`` beside the label folders, or ``None`` (module docstring).

    Raises:
        DataError: naming the file: unreadable, not UTF-8, or empty.
    """
    root = _folder_root(path, split)
    per_label = {}
    try:
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if entry.is_dir() and entry.name != "unsup":
                files = sorted(
                    f.path
                    for f in os.scandir(entry.path)
                    if f.name.endswith(".txt") and f.is_file()
                )
                if files:
                    per_label[entry.name] = files
    except OSError as e:
        raise DataError(f"{path}: cannot list folder: {e.strerror or e}") from None
    if not per_label:
        raise DataError(
            f"{path}: no label folders with .txt files (expected <label>/*.txt, "
            f"{split}/<label>/*.txt or aclImdb/{split}/<label>/*.txt)"
        )
    urls = {}
    for label in per_label:
        try:
            with open(os.path.join(root, f"urls_{label}.txt"), "rb") as f:
                urls[label] = decode_utf8(f.read(), f.name).splitlines()
        except OSError:
            break
    groups = _file_groups(per_label, urls) or {}
    for label, file in _round_robin(per_label):
        try:
            with open(file, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise DataError(f"{file}: cannot read: {e.strerror or e}") from None
        text = decode_utf8(raw, file)
        if not text.strip():
            raise DataError(f"{file}: empty text (expected one example per .txt file)")
        yield text, label, groups.get(file)


def archive_examples(path: str, split: str) -> Iterator[tuple[str, str, str | None]]:
    """``(text, label, group)`` of every ``.txt`` in the label folders of the tar archive
    ``path`` (read in place, with a progress display in compressed bytes), round-robin
    across labels; ``group`` as in :func:`folder_examples`.

    Raises:
        DataError: not a readable tar, no ``split`` folder, no label folders, or a member
            that is not UTF-8 or is empty (named ``archive:member``).
    """
    pattern = re.compile(rf"^(?:.*/)?{re.escape(split)}/([^/]+)/[^/]+\.txt$")
    flat = re.compile(r"^(?:\./)?([^/]+)/[^/]+\.txt$")
    urls_pattern = re.compile(rf"^(?:.*/)?{re.escape(split)}/urls_([^/]+)\.txt$")
    urls_flat = re.compile(r"^(?:\./)?urls_([^/]+)\.txt$")
    urls: dict[bool, dict[str, list[str]]] = {True: {}, False: {}}  # in split folder?
    per_split: dict[str, list[str]] = {}
    per_flat: dict[str, list[str]] = {}
    contents: dict[str, bytes] = {}
    try:
        # Progress in compressed bytes read (an IMDB archive: 85 MB, about 10 s).
        with (
            open(path, "rb") as raw,
            tarfile.open(fileobj=raw, mode="r:*") as archive,
            progress(f"reading {os.path.basename(path)}", os.path.getsize(path), "bytes") as bar,
        ):
            for member in archive:
                bar.update(raw.tell() - bar.n)
                if not member.isfile():
                    continue
                url_match = urls_pattern.match(member.name) or urls_flat.match(member.name)
                if url_match:
                    raw_urls = archive.extractfile(member).read()
                    lines = decode_utf8(raw_urls, f"{path}:{member.name}").splitlines()
                    urls[url_match.re is urls_pattern][url_match.group(1)] = lines
                    continue
                match = pattern.match(member.name)
                target = per_split
                if not match:
                    match, target = flat.match(member.name), per_flat
                if match and match.group(1) != "unsup":
                    target.setdefault(match.group(1), []).append(member.name)
                    contents[member.name] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].rstrip(":")
        raise DataError(f"{path}: not a readable tar archive: {reason}") from None
    if not per_split and split != DEFAULT_SPLIT:
        raise DataError(f"{path}: no split folder {split!r} in the archive")
    per_label = per_split or per_flat
    if not per_label:
        raise DataError(
            f"{path}: no label folders with .txt files in the archive (expected "
            f"[aclImdb/]{split}/<label>/*.txt or <label>/*.txt)"
        )
    per_label = {k: sorted(v) for k, v in per_label.items()}
    groups = _file_groups(per_label, urls[bool(per_split)]) or {}
    for label, name in _round_robin(per_label):
        text = decode_utf8(contents.pop(name), f"{path}:{name}")
        if not text.strip():
            raise DataError(f"{path}:{name}: empty text (expected one example per .txt file)")
        yield text, label, groups.get(name)
