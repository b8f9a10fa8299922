"""Parallel text (many-to-many): source sentences with their translations.

:func:`load_parallel` reads any supported source into a :class:`ParallelData`:

- **a folder of ``<split>.<lang>[.gz]`` files** (the Multi30k/WMT convention):
  ``train.en.gz`` and ``train.de.gz`` for ``split="train"``, ``source_lang="en"``,
  ``target_lang="de"``;
- **explicit files**: ``source_file`` and ``target_file``, one sentence per line
  (``.gz`` allowed);
- **a tab-separated pair file** (``.tsv``/``.txt``), or one inside a ``.zip`` (the
  Anki ``spa-eng.zip`` layout): column 1 is the source, column 2 the target
  (``reverse=True`` swaps them); further columns, such as the attribution of newer
  Anki files, are ignored;
- **TFDS**: ``tfds:<name>`` translation datasets whose features are keyed by
  language code (e.g. ``tfds:ted_hrlr_translate/pt_to_en``).

Policy for imperfect data:

- the two sides must have the same number of lines, or it is an error naming
  both files and both counts;
- a pair with an empty (or whitespace-only) side is skipped and counted in
  ``ParallelData.skipped_empty``, so recipes can report it;
- over-long pairs are the recipe's business: it knows the token lengths (the
  translation recipe drops pairs longer than its ``sequence_length`` from
  training and reports how many).

Every error is a :class:`~seqtasks.errors.DataError` naming the file (and line)
and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import re
import zipfile

from seqtasks.errors import DataError
from seqtasks.io import decode_utf8, read_text, text_lines

_LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]+)*$")
_PAIR_FILE_SUFFIXES = (".tsv", ".txt")


@dataclasses.dataclass
class ParallelData:
    """Aligned source and target sentences.

    Attributes:
        sources: source-language sentences (str).
        targets: their translations, ``targets[i]`` for ``sources[i]``.
        source: where the pairs came from, for messages and metadata.
        skipped_empty: pairs dropped because one side was empty.
    """

    sources: list[str]
    targets: list[str]
    source: str
    skipped_empty: int = 0

    def __len__(self) -> int:
        return len(self.sources)


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
) -> ParallelData:
    """Read sentence pairs from a folder, two files, a pair file, a zip or TFDS.

    Args:
        path: folder, pair file, ``.zip`` or ``tfds:<name>``; ``None`` when
            ``source_file`` and ``target_file`` are given.
        source_lang: source language code, e.g. ``"en"``.
        target_lang: target language code, e.g. ``"de"``.
        split: file prefix in a folder (``train``, ``val``, ``test_2016_flickr``)
            or TFDS split (default ``train``).
        source_file: explicit source file (with ``target_file``).
        target_file: explicit target file (with ``source_file``).
        reverse: for pair files, read column 2 as the source and column 1 as the target.
        max_examples: keep only the first N pairs (``None``: all).

    Returns:
        The pairs in file order, empty pairs removed.

    Raises:
        DataError: missing files or languages, bad language codes, mismatched
            line counts, bad encoding, a row without a tab, a zip without a
            pair file, or no pairs at all.
    """
    for name, code in (("source_lang", source_lang), ("target_lang", target_lang)):
        if not _LANGUAGE_CODE.match(code or ""):
            raise DataError(
                f"--{name.replace('_', '-')}: expected a language code such as en or de; received: {code!r}"
            )
    if source_lang == target_lang:
        raise DataError(f"--source-lang and --target-lang are both {source_lang!r}")
    if source_file or target_file:
        if not (source_file and target_file):
            raise DataError("--source-file and --target-file go together; received only one")
        pairs, where = _line_files(source_file, target_file), f"{source_file} + {target_file}"
    elif path is None:
        raise DataError("no data: pass --data PATH, or --source-file and --target-file")
    elif path.startswith("tfds:"):
        pairs, where = _tfds_pairs(path[len("tfds:") :], split, source_lang, target_lang), path
    elif not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory")
    elif os.path.isdir(path):
        files = [_split_file(path, split, lang) for lang in (source_lang, target_lang)]
        pairs, where = _line_files(*files), path
    elif path.endswith(".zip"):
        pairs, where = _zip_pairs(path, reverse), path
    elif path.endswith(_PAIR_FILE_SUFFIXES):
        pairs, where = _pair_lines(path, read_text(path), reverse), path
    else:
        raise DataError(
            f"{path}: expected a folder of <split>.<lang>[.gz] files, a .tsv/.txt pair file, "
            f"a .zip holding one, or tfds:<name>"
        )
    data = ParallelData([], [], where)
    for source, target in pairs:
        if not source.strip() or not target.strip():
            data.skipped_empty += 1
            continue
        data.sources.append(source)
        data.targets.append(target)
        if max_examples is not None and len(data) >= max_examples:
            break
    if not data.sources:
        raise DataError(f"{where}: no sentence pairs found (split {split!r})")
    return data


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


def _line_files(source_file: str, target_file: str) -> list[tuple[str, str]]:
    sources, targets = text_lines(read_text(source_file)), text_lines(read_text(target_file))
    if len(sources) != len(targets):
        raise DataError(
            f"line counts differ: {source_file} has {len(sources)} lines, "
            f"{target_file} has {len(targets)}; expected one translation per line"
        )
    return list(zip(sources, targets))


def _pair_lines(where: str, text: str, reverse: bool) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(text_lines(text), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(f"{where}:{number}: expected source<TAB>target, found no tab")
        pairs.append((fields[1], fields[0]) if reverse else (fields[0], fields[1]))
    return pairs


def _zip_pairs(path: str, reverse: bool) -> list[tuple[str, str]]:
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
    return _pair_lines(where, decode_utf8(raw, where), reverse)


def _tfds_pairs(name: str, split: str, source_lang: str, target_lang: str) -> list[tuple[str, str]]:
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
    return [
        (example[source_lang].decode("utf-8"), example[target_lang].decode("utf-8"))
        for example in tfds.as_numpy(dataset)
    ]
