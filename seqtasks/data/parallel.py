"""Parallel text (many-to-many): source sentences with their translations.

:func:`load_parallel` reads any supported source into a :class:`ParallelData`:

- **a folder of ``<split>.<lang>[.gz]`` files** (the Multi30k/WMT convention):
  ``train.en.gz`` and ``train.de.gz`` for ``split="train"``, ``source_lang="en"``,
  ``target_lang="de"``;
- **explicit files**: ``source_file`` and ``target_file``, one sentence per line
  (``.gz`` allowed);
- **records**: a CSV, JSONL or Parquet file, or a TSV *with a header*, read with
  :func:`~seqtasks.data.records.read_records`, one pair per record. The columns are
  ``source_column`` / ``target_column``, by default the language codes if the file
  has such columns (``en``, ``de``), else ``source`` / ``target``;
- **a headerless tab-separated pair file** (``.tsv``/``.txt``), or one inside a
  ``.zip`` (the Anki ``spa-eng.zip`` layout): column 1 is the source, column 2 the
  target (``reverse=True`` swaps them); further columns, such as the attribution of
  newer Anki files, are ignored;
- **TFDS**: ``tfds:<name>`` translation datasets whose features are keyed by
  language code (e.g. ``tfds:ted_hrlr_translate/pt_to_en``).

How a ``.tsv``/``.txt`` file is told apart: it is read as records (a header row,
then fields split on tabs exactly) when ``format`` is given (``tsv``), when
``source_column`` or ``target_column`` is given, or when its first line names both
columns (the language codes or ``source``/``target``, e.g. ``en<TAB>de``);
otherwise it is a headerless pair file. ``.csv``, ``.jsonl``/``.ndjson`` and
``.parquet``/``.pq`` are always records; ``format`` overrides the extension.
``format`` and the column options do not apply to folders, two files, zips or
``tfds:`` (an error says so).

Policy for imperfect data (``on_bad_rows``, default ``error``):

- a bad row is a pair without a tab (pair files), a record with the wrong number
  of fields, a missing, null or empty (whitespace-only) source or target, a line
  that is not UTF-8, or a JSONL line that is not a JSON object. With ``error`` the
  first one is a :class:`~seqtasks.errors.DataError` naming ``file:line`` (for two
  line files, the file whose line is empty); with ``skip`` bad rows are left out, a
  warning gives their count and first five line numbers
  (:meth:`~seqtasks.data.records.BadRows.summary`), and
  ``ParallelData.skipped_bad_rows`` their count. Nothing is dropped silently.
  (Before ``on_bad_rows`` existed, empty pairs were skipped and only counted; the
  shared Multi30k and Anki files have none, so the strict default changes nothing
  for them.)
- a line blank in both files of a pair (a paragraph break) is not a pair and is
  passed over, as blank lines of every record format are;
- the two sides must have the same number of lines, or it is an error naming
  both files and both counts, whatever ``on_bad_rows`` says;
- ``tfds:`` data cannot be fixed by its user: a pair with an empty side is
  skipped with a warning and counted in ``ParallelData.skipped_empty``;
- over-long pairs are the recipe's business: it knows the token lengths (the
  translation recipe drops pairs longer than its ``sequence_length`` from
  training and reports how many).

Every error is a :class:`~seqtasks.errors.DataError` naming the file (and line;
``row N`` for Parquet) and what was expected.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import re
import zipfile
from collections.abc import Iterator

from seqtasks.data.records import (
    BadRows,
    detect_format,
    has_bad_bytes,
    pick_column,
    read_columns,
    string_fields,
)
from seqtasks.errors import DataError
from seqtasks.io import decode_utf8, read_text, text_lines

log = logging.getLogger(__name__)

_LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]+)*$")
_PAIR_FILE_SUFFIXES = (".tsv", ".txt")
_RECORD_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet", ".pq", ".tab")
_NOT_UTF8 = ("not valid UTF-8", "not valid UTF-8; expected UTF-8 text")

Pairs = Iterator[tuple[str, str]]


@dataclasses.dataclass
class ParallelData:
    """Aligned source and target sentences.

    Attributes:
        sources: source-language sentences (str).
        targets: their translations, ``targets[i]`` for ``sources[i]``.
        source: where the pairs came from, for messages and metadata.
        skipped_empty: ``tfds:`` pairs dropped because one side was empty.
        skipped_bad_rows: rows skipped as malformed with ``on_bad_rows="skip"``
            (``None`` when bad rows are errors).
    """

    sources: list[str]
    targets: list[str]
    source: str
    skipped_empty: int = 0
    skipped_bad_rows: int | None = None

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, indices) -> ParallelData:
        """The pairs at ``indices`` (an iterable of ints), in that order, from the same source."""
        indices = list(indices)
        return ParallelData(
            [self.sources[i] for i in indices], [self.targets[i] for i in indices], self.source
        )


def load_parallel(
    path: str | None = None,
    *,
    source_lang: str,
    target_lang: str,
    split: str = "train",
    source_file: str | None = None,
    target_file: str | None = None,
    reverse: bool = False,
    max_examples: int | None = None,
    format: str | None = None,
    source_column: str | None = None,
    target_column: str | None = None,
    on_bad_rows: str = "error",
) -> ParallelData:
    """Read sentence pairs from a folder, two files, a records or pair file, a zip or TFDS.

    Args:
        path: folder, records file, pair file, ``.zip`` or ``tfds:<name>``; ``None``
            when ``source_file`` and ``target_file`` are given.
        source_lang: source language code, e.g. ``"en"``.
        target_lang: target language code, e.g. ``"de"``.
        split: file prefix in a folder (``train``, ``val``, ``test_2016_flickr``)
            or TFDS split (default ``train``).
        source_file: explicit source file (with ``target_file``).
        target_file: explicit target file (with ``source_file``).
        reverse: for headerless pair files, read column 2 as the source and column 1
            as the target (records name their columns instead).
        max_examples: keep only the first N pairs (``None``: all).
        format: ``tsv``, ``csv``, ``jsonl``, ``parquet``, or ``None``/``"auto"``
            (from the extension; see the module docstring for ``.tsv``/``.txt``).
        source_column: records: the source field (default: ``source_lang`` if
            present, else ``source``).
        target_column: records: the target field (default: ``target_lang`` if
            present, else ``target``).
        on_bad_rows: ``error`` (default) or ``skip`` (see the module docstring).

    Returns:
        The pairs in file order.

    Raises:
        DataError: missing files or languages, bad language codes, mismatched
            line counts, a missing column, bad encoding, a bad row (with
            ``error``), a zip without a pair file, options that do not apply to
            the data, or no pairs at all.
    """
    for name, code in (("source_lang", source_lang), ("target_lang", target_lang)):
        if not _LANGUAGE_CODE.match(code or ""):
            raise DataError(
                f"--{name.replace('_', '-')}: expected a language code such as en or de; received: {code!r}"
            )
    if source_lang == target_lang:
        raise DataError(f"--source-lang and --target-lang are both {source_lang!r}")
    if format == "auto":
        format = None
    record_options = (format, source_column, target_column)
    skipped_empty = [0]
    if source_file or target_file:
        if not (source_file and target_file):
            raise DataError("--source-file and --target-file go together; received only one")
        _refuse_record_options("--source-file/--target-file", *record_options)
        where = f"{source_file} + {target_file}"
        bad_rows = BadRows(where, on_bad_rows)
        pairs = _line_files(source_file, target_file, bad_rows)
    elif path is None:
        raise DataError("no data: pass --data PATH, or --source-file and --target-file")
    elif path.startswith("tfds:"):
        _refuse_record_options(path, *record_options)
        where, bad_rows = path, BadRows(path, on_bad_rows)
        pairs = _tfds_pairs(path[len("tfds:") :], split, source_lang, target_lang, skipped_empty)
    elif not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory")
    elif os.path.isdir(path):
        _refuse_record_options(f"{path} (a folder of <split>.<lang> files)", *record_options)
        files = [_split_file(path, split, lang) for lang in (source_lang, target_lang)]
        where, bad_rows = path, BadRows(" + ".join(files), on_bad_rows)
        pairs = _line_files(*files, bad_rows)
    elif path.endswith(".zip"):
        _refuse_record_options(f"{path} (a zip of a pair file)", *record_options)
        where = path
        pairs, bad_rows = _zip_pairs(path, reverse, on_bad_rows)
    elif record_format := _record_format(path, source_lang, target_lang, *record_options):
        where, bad_rows = path, BadRows(path, on_bad_rows)
        columns = (source_column, source_lang), (target_column, target_lang)
        pairs = _record_pairs(path, record_format, columns, bad_rows)
    elif path.endswith(_PAIR_FILE_SUFFIXES):
        where, bad_rows = path, BadRows(path, on_bad_rows)
        text = read_text(path, keep_bad_bytes=on_bad_rows == "skip")
        pairs = _pair_lines(text, reverse, bad_rows)
    else:
        raise DataError(
            f"{path}: expected a folder of <split>.<lang>[.gz] files, a .csv/.jsonl/.parquet "
            f"file or .tsv with a header, a .tsv/.txt pair file, a .zip holding one, or "
            f"tfds:<name> (or pass --format)"
        )
    kept = list(itertools.islice(pairs, max_examples))
    summary = bad_rows.summary()
    if summary:
        log.warning("%s", summary)
    if not kept:
        raise DataError(
            f"{where}: no sentence pairs found (split {split!r})"
            + (f" ({summary})" if summary else "")
        )
    return ParallelData(
        [source for source, _ in kept],
        [target for _, target in kept],
        where,
        skipped_empty=skipped_empty[0],
        skipped_bad_rows=len(bad_rows.rows) if on_bad_rows == "skip" else None,
    )


def _refuse_record_options(what: str, format, source_column, target_column) -> None:
    for flag, value in (
        ("--format", format),
        ("--source-column", source_column),
        ("--target-column", target_column),
    ):
        if value:
            raise DataError(
                f"{flag} applies to CSV, TSV, JSONL and Parquet files; received it with {what}"
            )


def _record_format(
    path: str, source_lang: str, target_lang: str, format, source_column, target_column
) -> str | None:
    """The record format of file ``path``, or ``None`` for a headerless pair file."""
    if format:
        return detect_format(path, format)
    lower = path.lower()
    if lower.endswith(_RECORD_SUFFIXES):
        return detect_format(path)
    if not lower.endswith(_PAIR_FILE_SUFFIXES):
        return None
    if source_column or target_column:
        return "tsv"
    try:
        with open(path, "rb") as f:
            first = f.readline(65536)
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    names = {name.strip() for name in first.decode("utf-8-sig", "replace").split("\t")}
    if names & {source_lang, "source"} and names & {target_lang, "target"}:
        return "tsv"
    return None


def _report(bad_rows: BadRows, file: str, line: int, reason: str, message: str) -> None:
    """Like ``bad_rows.report``, but an error names ``file`` (one of a pair of line files)."""
    if bad_rows.mode == "error":
        raise DataError(f"{file}:{line}: {message}")
    bad_rows.report(line, reason, message)


def _split_file(folder: str, split: str, lang: str) -> str:
    for name in (f"{split}.{lang}", f"{split}.{lang}.gz"):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    found = sorted(
        m.group(1)
        for name in os.listdir(folder)
        if (m := re.fullmatch(rf"{re.escape(split)}\.([^.]+)(\.gz)?", name))
    )
    if not found:
        raise DataError(f"{folder}: no files for split {split!r} (expected {split}.<lang>[.gz])")
    raise DataError(
        f"{folder}: no {split}.{lang}[.gz] for language {lang!r}; split {split!r} has: {', '.join(found)}"
    )


def _line_files(source_file: str, target_file: str, bad_rows: BadRows) -> Pairs:
    keep = bad_rows.mode == "skip"
    sources = text_lines(read_text(source_file, keep))
    targets = text_lines(read_text(target_file, keep))
    if len(sources) != len(targets):
        raise DataError(
            f"line counts differ: {source_file} has {len(sources)} lines, "
            f"{target_file} has {len(targets)}; expected one translation per line"
        )
    return _aligned_lines(source_file, target_file, sources, targets, bad_rows)


def _aligned_lines(source_file, target_file, sources, targets, bad_rows: BadRows) -> Pairs:
    sides = ((source_file, target_file, "source"), (target_file, source_file, "target"))
    for number, pair in enumerate(zip(sources, targets), start=1):
        if not pair[0].strip() and not pair[1].strip():
            continue  # a blank line on both sides: not a pair
        for (file, other, kind), text in zip(sides, pair):
            if has_bad_bytes(text):
                _report(bad_rows, file, number, *_NOT_UTF8)
                break
            if not text.strip():
                _report(
                    bad_rows,
                    file,
                    number,
                    f"empty {kind}",
                    f"empty {kind} sentence; expected one, aligned with line {number} of {other}",
                )
                break
        else:
            yield pair


def _pair_lines(text: str, reverse: bool, bad_rows: BadRows) -> Pairs:
    for number, line in enumerate(text_lines(text), start=1):
        if not line.strip():
            continue
        if has_bad_bytes(line):
            bad_rows.report(number, *_NOT_UTF8)
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            bad_rows.report(number, "no tab", "expected source<TAB>target, found no tab")
            continue
        columns = ((1, "source"), (0, "target")) if reverse else ((0, "source"), (1, "target"))
        for column, kind in columns:
            if not fields[column].strip():
                bad_rows.report(
                    number, f"empty {kind}", f"empty {kind} sentence (column {column + 1})"
                )
                break
        else:
            yield fields[columns[0][0]], fields[columns[1][0]]


def _record_pairs(path: str, format: str, columns, bad_rows: BadRows) -> Pairs:
    """Pairs of a records file; ``columns`` is ``((given, language), (given, language))``."""

    def pick(fields) -> tuple[str, str]:
        keys = tuple(
            pick_column(path, given, (language, kind), fields, kind)
            for (given, language), kind in zip(columns, ("source", "target"))
        )
        if keys[0] == keys[1]:
            raise DataError(f"{path}: column {keys[0]!r} cannot be both the source and the target")
        return keys

    for keys, record in read_columns(path, format, bad_rows, pick):
        pair = _record_pair(record, keys, bad_rows)
        if pair is not None:
            yield pair


def _record_pair(record, keys: tuple[str, str], bad_rows: BadRows) -> tuple[str, str] | None:
    """``(source, target)`` of a record, or ``None`` after reporting why it is bad."""
    values = string_fields(
        record,
        keys,
        ("source", "target"),
        bad_rows,
        lambda key, kind: f"field {key!r} is empty (empty {kind} sentence)",
    )
    return None if values is None else (values[0], values[1])


def _zip_pairs(path: str, reverse: bool, on_bad_rows: str) -> tuple[Pairs, BadRows]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                name
                for name in archive.namelist()
                if name.endswith(_PAIR_FILE_SUFFIXES) and not os.path.basename(name).startswith("_")
            ]
            if len(members) != 1:
                listed = ", ".join(members) if members else "none"
                raise DataError(
                    f"{path}: expected exactly one .tsv/.txt pair file in the zip (files starting "
                    f"with _ are skipped); found: {listed}"
                )
            raw = archive.read(members[0])
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path}: not a readable zip archive: {e}") from None
    where = f"{path}:{members[0]}"
    bad_rows = BadRows(where, on_bad_rows)
    text = decode_utf8(raw, where, keep_bad_bytes=on_bad_rows == "skip")
    return _pair_lines(text, reverse, bad_rows), bad_rows


def _tfds_pairs(
    name: str, split: str, source_lang: str, target_lang: str, skipped_empty: list[int]
) -> Pairs:
    import tensorflow_datasets as tfds

    try:
        dataset, info = tfds.load(name, split=split, with_info=True)
    except Exception as e:  # tfds raises many types (not found, network, bad split)
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"tfds:{name}: cannot load split {split!r}: {first_line}") from None
    languages = list(info.features)
    for lang in (source_lang, target_lang):
        if lang not in info.features:
            raise DataError(
                f"tfds:{name}: no language {lang!r}; the dataset has: {', '.join(languages)}"
            )
    for example in tfds.as_numpy(dataset):
        source = example[source_lang].decode("utf-8")
        target = example[target_lang].decode("utf-8")
        if source.strip() and target.strip():
            yield source, target
        else:  # a published dataset cannot be fixed by the user: skip, and say so
            skipped_empty[0] += 1
            log.warning("tfds:%s: skipped a pair with an empty side", name)
