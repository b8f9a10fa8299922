"""Unlabeled text for language models, read into a :class:`TextCorpus` by :func:`load_corpus`.

Two modes: ``documents`` (one text per document: a line, a row, an archive member) and
``stream`` (the pieces of one contiguous text, joined by :meth:`TextCorpus.stream_text`).

- **plain text** (``.txt``, ``.text``, ``.gz`` of text, any unknown extension): in
  ``stream`` mode the whole file is one text, exactly as in the file; in ``documents``
  mode each non-blank line is a document (``file:LINE``; blank lines only separate).
- **records** (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``, or ``format=``): one text per
  row from the text column: ``text_column``, else the first of ``text, sentence, review,
  content`` present, else the only string column. Rows follow
  :class:`~seqtasks.data.records.BadRows` (an empty text is a bad row, as in
  classification; ``on_bad_rows="skip"`` skips and counts them). Names: ``file:LINE``
  (``file:row N`` for Parquet), as in the records' messages.
- **tar archives** (``.tar.gz``, ``.tgz``, ``.tar``): every ``<folder>/<name>.txt``
  member below the archive root (not ``urls_*.txt``, ``imdbEr.txt`` or hidden members),
  in member-name order, one text each (``archive:member``), IMDB's ``<br />`` turned into
  newlines. ``split`` keeps the members with that folder in their path (``unsup``, ``pos``).
- **a folder**: every file of the kinds above in it or its sub-folders, in path order;
  hidden files and folders and ``README*``/``LICENSE*`` files are skipped, and so are
  other extensions. ``split`` filters archive members, and other files by their folder.
- **TFDS** ``tfds:NAME`` (split ``train`` by default): ``text_column`` or the only string
  feature, decoded as UTF-8; needs the dataset prepared locally or internet access.

Empty or whitespace-only texts (not records' rows) are dropped and counted in
``skipped_empty``. Every error is a one-line :class:`~seqtasks.errors.DataError` naming
the file (and line or member) and what was expected.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import re
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from functools import partial

from seqtasks.data.classification import TEXT_COLUMNS
from seqtasks.data.records import (
    FORMATS,
    BadRows,
    detect_format,
    pick_column,
    read_columns,
    string_fields,
)
from seqtasks.errors import DataError
from seqtasks.io import decode_utf8, text_lines
from seqtasks.progress import progress

log = logging.getLogger(__name__)

MODES = ("documents", "stream")
CORPUS_FORMATS = ("text",) + FORMATS
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_TEXT_SUFFIXES = (".txt", ".text", ".gz")
_LINE_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_FOLDER_KINDS = ".txt/.text/.gz, .tar.gz/.tgz/.tar or .csv/.tsv/.jsonl/.parquet files"


@dataclasses.dataclass
class TextCorpus:
    """Texts read by :func:`load_corpus`.

    Attributes:
        texts: ``documents`` mode: one document each; ``stream`` mode: the pieces
            (files, members, rows) of the stream, in order.
        source: the path (or ``tfds:NAME``) as given, for messages.
        names: per text, where it came from (``file.txt:12``, ``archive.tar.gz:member``,
            ``file.csv:7``, ``file.parquet:row 7``); ``None`` if unknown (TFDS).
        skipped_empty: texts dropped because empty or whitespace-only.
        skipped_bad_rows: record rows skipped with ``on_bad_rows="skip"``; ``None``
            when bad rows are errors or no record file was read (as in classification).
        excluded: what :func:`without_texts` left out, when the caller records it
            (``{"path", "texts", "documents_left_out"}``), else ``None``.
    """

    texts: list[str]
    source: str
    names: list[str] | None = None
    skipped_empty: int = 0
    skipped_bad_rows: int | None = None
    excluded: dict | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def stream_text(self) -> str:
        """The texts as one string: a newline between two texts, unless the first already
        ends with one (so a single file's text comes back exactly)."""
        last = len(self.texts) - 1
        return "".join(
            t if i == last or t.endswith("\n") else t + "\n" for i, t in enumerate(self.texts)
        )

    def subset(self, indices: Iterable[int]) -> TextCorpus:
        """The texts (and names) at ``indices``, in that order; the counts are kept."""
        indices = [int(i) for i in indices]
        names = None if self.names is None else [self.names[i] for i in indices]
        return dataclasses.replace(self, texts=[self.texts[i] for i in indices], names=names)


def text_key(text: str) -> str:
    """A text with IMDB's ``<br />`` and runs of whitespace as one space: the same review
    read as a labelled example and as corpus text (which turns ``<br />`` into newlines)
    gets the same key."""
    return re.sub(r"(?:<br\s*/?>|\s)+", " ", text, flags=re.IGNORECASE).strip()


def without_texts(corpus: TextCorpus, texts: Iterable[str]) -> tuple[TextCorpus, int]:
    """``corpus`` without the documents equal to one of ``texts`` (compared by
    :func:`text_key`), and how many were left out.

    Used to keep a classifier's validation texts out of the text a language model is
    pretrained on (``exclude_texts`` of the language-model recipe).
    """
    held_out = {text_key(text) for text in texts}
    keep = [i for i, text in enumerate(corpus.texts) if text_key(text) not in held_out]
    return corpus.subset(keep), len(corpus) - len(keep)


def load_corpus(
    path: str,
    *,
    mode: str = "documents",
    format: str | None = None,
    text_column: str | None = None,
    split: str | None = None,
    max_documents: int | None = None,
    on_bad_rows: str = "error",
) -> TextCorpus:
    """Read unlabeled text from a file, folder, archive or ``tfds:NAME`` (module docstring).

    Args:
        path: the data.
        mode: ``documents`` (default) or ``stream``.
        format: ``text``, ``tsv``, ``csv``, ``jsonl``, ``parquet``, or ``None``/``auto``
            for the extension; for a single file (not an archive, folder or ``tfds:``).
        text_column: the records' field or TFDS feature holding the text.
        split: archives and folders: keep members/files under a folder of that name
            (``None``: all); TFDS: the split (``None``: ``train``).
        max_documents: keep the first N texts (``None``: all).
        on_bad_rows: ``error`` (default) or ``skip``, for records (see BadRows).

    Raises:
        DataError: bad argument, missing path, unreadable or malformed file, not UTF-8,
            no text column, or no text at all.
    """
    if mode not in MODES:
        raise DataError(f"--mode: expected one of {', '.join(MODES)}; received: {mode!r}")
    if format not in (None, "auto", *CORPUS_FORMATS):
        raise DataError(
            f"--format: expected one of {', '.join(CORPUS_FORMATS)}; received: {format!r}"
        )
    if max_documents is not None and max_documents < 1:
        raise DataError(f"--max-documents: expected at least 1; received: {max_documents!r}")
    BadRows(path, on_bad_rows)  # checks on_bad_rows
    reader = _Reader(mode, text_column, split, on_bad_rows)
    within = f" in a folder {split!r}" if split else ""
    if path.startswith("tfds:"):
        pieces = _tfds_pieces(path[len("tfds:") :], split or "train", text_column)
        expected = f"non-empty texts in split {split or 'train'!r}"
    elif not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory")
    elif os.path.isdir(path):
        pieces, expected = reader.folder(path), f"{_FOLDER_KINDS} in the folder or below it{within}"
    else:
        kind = _kind(path, format)
        if split is not None and kind != "archive":
            raise DataError(
                f"{path}: --split {split!r} applies to archives, folders and tfds:, "
                f"not to a single file"
            )
        pieces = reader.file(path, kind)
        expected = {
            "archive": f"<folder>/<name>.txt members{within}",
            "text": "UTF-8 text, not only whitespace",
        }.get(kind, "rows with a non-empty text field")
    texts, names, empty = [], [], 0
    for name, text in pieces:
        if not text.strip():
            empty += 1
            continue
        texts.append(text)
        names.append(name)
        if len(texts) == max_documents:
            break
    if not texts:
        summaries = "; ".join(s for s in (b.summary() for b in reader.bad_rows) if s)
        raise DataError(
            f"{path}: no text (expected {expected})" + (f" ({summaries})" * bool(summaries))
        )
    skipped = sum(len(b.rows) for b in reader.bad_rows)
    skipped = skipped if reader.bad_rows and on_bad_rows == "skip" else None
    return TextCorpus(texts, path, None if None in names else names, empty, skipped)


def _kind(path: str, format: str | None = None) -> str:
    """``archive``, ``text`` or a records format, from the name (and ``format``)."""
    if path.lower().endswith(_ARCHIVE_SUFFIXES):
        return "archive"
    if format == "text":
        return "text"
    if format not in (None, "auto"):
        return detect_format(path, format)
    try:
        return detect_format(path)
    except DataError:  # not a records extension: text
        return "text"


def _is_document(member: str, split: str | None) -> bool:
    """Whether an archive member is a ``<folder>/<name>.txt`` text (not urls_*, imdbEr)."""
    parts = [p for p in member.split("/") if p not in ("", ".")]
    if len(parts) < 2 or not parts[-1].endswith(".txt"):
        return False
    name = parts[-1]
    if name.startswith((".", "urls_")) or name == "imdbEr.txt":
        return False
    return split is None or split in parts[:-1]


def _skipped_file(name: str) -> bool:
    return name.startswith(".") or name.upper().startswith(("README", "LICENSE"))


class _Reader:
    """Yields ``(name, text)`` pieces of files; keeps the records' BadRows."""

    def __init__(self, mode: str, text_column: str | None, split: str | None, on_bad_rows: str):
        self.mode, self.text_column, self.split = mode, text_column, split
        self.on_bad_rows = on_bad_rows
        self.bad_rows: list[BadRows] = []

    def file(self, path: str, kind: str) -> Iterator[tuple[str, str]]:
        read = {"archive": self.archive, "text": self.text}.get(kind)
        return read(path) if read else self.records(path, kind)

    def folder(self, path: str) -> Iterator[tuple[str, str]]:
        def fail(error: OSError):
            raise DataError(f"{error.filename or path}: cannot list folder: {error.strerror}")

        files = []
        for root, folders, names in os.walk(path, onerror=fail):
            folders[:] = [f for f in folders if not f.startswith(".")]
            files += [os.path.join(root, n) for n in names if not _skipped_file(n)]
        for file in sorted(files):
            kind = _kind(file)
            if kind == "text" and not file.lower().endswith(_TEXT_SUFFIXES):
                continue
            folder = os.path.relpath(os.path.dirname(file), path).split(os.sep)
            if kind != "archive" and self.split is not None and self.split not in folder:
                continue
            yield from self.file(file, kind)

    def text(self, path: str) -> Iterator[tuple[str, str]]:
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
        if path.lower().endswith(".gz"):
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error) as e:
                raise DataError(f"{path}: not a readable gzip file: {_first_line(e)}") from None
        text = decode_utf8(raw, path)
        if self.mode == "stream":
            yield path, text
            return
        for number, line in enumerate(text_lines(text), start=1):
            if line.strip():
                yield f"{path}:{number}", line

    def archive(self, path: str) -> Iterator[tuple[str, str]]:
        contents: dict[str, bytes] = {}
        try:
            # Progress in compressed bytes read (the IMDB unsup archive: 28 MB, some seconds).
            size, label = os.path.getsize(path), f"reading {os.path.basename(path)}"
            with (
                open(path, "rb") as raw,
                tarfile.open(fileobj=raw, mode="r:*") as archive,
                progress(label, size, "bytes") as bar,
            ):
                for member in archive:
                    bar.update(raw.tell() - bar.n)
                    if member.isfile() and _is_document(member.name, self.split):
                        contents[member.name] = archive.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: not a readable tar archive: {_first_line(e)}") from None
        for name in sorted(contents):
            where = f"{path}:{name}"
            yield where, _LINE_BREAK.sub("\n", decode_utf8(contents.pop(name), where))

    def records(self, path: str, format: str) -> Iterator[tuple[str, str]]:
        bad_rows = BadRows(path, self.on_bad_rows)
        self.bad_rows.append(bad_rows)
        pick = partial(_pick_text_column, path, format, self.text_column)
        for (key,), record in read_columns(path, format, bad_rows, pick):
            values = string_fields(
                record, (key,), ("text",), bad_rows, lambda k, _: f"field {k!r} is empty"
            )
            if values is not None:
                yield bad_rows.where(record.line), values[0]
        summary = bad_rows.summary()
        if summary:
            log.warning("%s", summary)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(":")


def _pick_text_column(path: str, format: str, given: str | None, fields) -> tuple[str]:
    """``(column,)``: ``given``, else a usual text column name, else the only string column.

    Raises:
        DataError: ``given`` is missing, or no or several string columns; lists the columns.
    """
    if given is not None or any(name in fields for name in TEXT_COLUMNS):
        return (pick_column(path, given, TEXT_COLUMNS, fields, "text"),)
    if format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        types = pq.read_schema(path)
        strings = [
            f.name for f in types if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        ]
    else:  # a TSV/CSV header (all strings) or a JSON object
        strings = [name for name in fields if isinstance(fields[name], str)]
    return (_only_string(path, strings, list(fields)),)


def _only_string(path: str, strings: list[str], names: list[str]) -> str:
    if len(strings) == 1:
        return strings[0]
    raise DataError(
        f"{path}: cannot find a text column (tried {', '.join(TEXT_COLUMNS)}, then the only "
        f"string column: found {len(strings) or 'no'} string columns); "
        f"the columns are: {', '.join(map(str, names))}; pass --text-column"
    )


def _tfds_pieces(name: str, split: str, text_column: str | None) -> Iterator[tuple[None, str]]:
    """``(None, text)`` of each example of a TFDS split.

    Raises:
        DataError: the dataset or split cannot be loaded, or no text feature is found.
    """
    import tensorflow_datasets as tfds  # imports TensorFlow only when a dataset loads

    try:
        dataset, info = tfds.load(name, split=split, with_info=True)
    except Exception as e:  # tfds raises many types (not found, network, bad split)
        raise DataError(f"tfds:{name}: cannot load split {split!r}: {_first_line(e)}") from None
    features, where = info.features, f"tfds:{name}"
    keys = list(features.keys())
    if text_column is not None or any(k in keys for k in TEXT_COLUMNS):
        key = pick_column(where, text_column, TEXT_COLUMNS, keys, "text")
    else:  # the only scalar string feature
        scalar = [k for k in keys if tuple(getattr(features[k], "shape", (0,))) == ()]
        key = _only_string(
            where, [k for k in scalar if getattr(features[k].dtype, "name", "") == "string"], keys
        )
    for example in tfds.as_numpy(dataset):
        text = example[key]
        # A published dataset cannot be fixed by the user: bad bytes become U+FFFD.
        yield None, text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
