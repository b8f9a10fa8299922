"""Text classification data (many-to-one): texts with one label each, or a set of labels.

:func:`load_text_classification` reads any supported source into a
:class:`TextClassificationData` (plain Python lists, so recipes can split,
fingerprint and vectorize them however they need):

- **label folders**: the aclImdb layout, as a ``.tar.gz``/``.tgz``/``.tar``
  archive or an extracted folder. Inside ``<root>/<split>/`` (``train`` by
  default; ``aclImdb/`` is looked through) every sub-folder except ``unsup``
  is a label and every ``*.txt`` file in it one example. Examples are taken
  round-robin across labels in file-name order, so the first N are balanced.
  An empty file is an error naming it. ``urls_<label>.txt`` files beside the label
  folders (aclImdb's) give each review's movie as its group.
- **records**: TSV (header row; the SST-2 ``sentence<TAB>label`` format), CSV,
  JSONL or Parquet, with ``text_column`` / ``label_column`` naming the fields.
  ``on_bad_rows="skip"`` skips malformed rows (wrong number of fields, empty
  or null text or label, invalid JSON, bad UTF-8) instead of failing on the
  first; a warning gives their number, first line numbers and reasons, and
  :attr:`TextClassificationData.skipped_bad_rows` their count. ``group_column``
  names an optional field holding each example's group (a movie, a speaker, a
  document), so that validation can be carved by group; a row with an empty or
  missing group is a bad row.
- **TFDS**: ``tfds:<name>`` (e.g. ``tfds:imdb_reviews``) through
  tensorflow-datasets; needs the dataset prepared locally or internet access.

With ``multi_label=True`` (records only) each example has a set of labels: a
string field is split on ``label_separator`` (default ``|``: ``"sports|politics"``),
each piece stripped, empty pieces dropped and repeats removed; a JSON list
(JSONL) or list column (Parquet) of strings or integers is taken as it is
(its items are not split). A row left with no label is a bad row. Label
folders and TFDS hold one label per text, so they are a
:class:`~seqtasks.errors.ConfigError` with ``multi_label``.

Every error is a :class:`~seqtasks.errors.DataError` that names the file
(and line, for records; ``row N`` for Parquet) and what was expected.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import re
from collections.abc import Iterable, Iterator
from functools import partial

from seqtasks.data.label_folders import DEFAULT_SPLIT, archive_examples, folder_examples
from seqtasks.data.records import (
    BadRows,
    detect_format,
    pick_column,
    read_columns,
)
from seqtasks.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "target")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
LABEL_SEPARATOR = "|"


@dataclasses.dataclass
class TextClassificationData:
    """Texts and their labels, aligned.

    Attributes:
        texts: raw texts (str).
        labels: labels as strings, exactly as in the data ("pos", "1", ...);
            with ``multi_label`` a tuple of distinct labels per text (at least one),
            in the order of the data.
        source: where the examples came from, for messages and metadata.
        skipped_bad_rows: rows skipped as malformed with ``on_bad_rows="skip"``
            (``None`` when bad rows are errors, or the source has no rows).
        multi_label: whether ``labels`` holds label tuples.
        groups: each example's group (IMDB: its movie's title id), aligned with
            ``texts``, or ``None`` when the data gives none. Examples of one group
            stay on one side of a grouped validation carve
            (:func:`seqtasks.data.pipeline.split_indices`).
    """

    texts: list[str]
    labels: list[str] | list[tuple[str, ...]]
    source: str
    skipped_bad_rows: int | None = None
    multi_label: bool = False
    groups: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def label_set(self) -> list[str]:
        """The distinct labels, sorted (numerically when all are integers)."""
        if self.multi_label:
            return sort_labels({label for labels in self.labels for label in labels})
        return sort_labels(set(self.labels))


def is_integer_label(label: str) -> bool:
    """True for labels such as ``"0"``, ``"12"`` or ``"-1"``."""
    return re.fullmatch(r"[+-]?\d+", label) is not None


def sort_labels(labels: Iterable[str]) -> list[str]:
    """Sort labels numerically if they are all integers, else as strings."""
    labels = list(labels)
    if labels and all(map(is_integer_label, labels)):
        return sorted(labels, key=int)
    return sorted(labels)


def load_text_classification(
    path: str,
    *,
    format: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    split: str = DEFAULT_SPLIT,
    max_examples: int | None = None,
    min_classes: int = 2,
    on_bad_rows: str = "error",
    multi_label: bool = False,
    label_separator: str = LABEL_SEPARATOR,
    group_column: str | None = None,
) -> TextClassificationData:
    """Read a labelled text dataset from a file, folder, archive or TFDS name.

    Args:
        path: the data (see the module docstring for the layouts).
        format: ``tsv``, ``csv``, ``jsonl``, ``parquet`` or ``None``/``"auto"``
            to use the file extension. Ignored for folders, archives and ``tfds:``.
        text_column: field holding the text; default: the first of
            ``text, sentence, review, content`` present.
        label_column: field holding the label; default: the first of
            ``label, labels, sentiment, class, target`` present.
        split: sub-folder of a label-folder layout, or TFDS split (default ``train``).
        max_examples: keep only the first N examples (``None``: all).
        min_classes: fewer distinct labels than this is an error (default 2;
            evaluation passes 1).
        on_bad_rows: ``error`` (default): the first malformed row is a
            DataError; ``skip``: malformed rows of a records file are skipped,
            logged as a warning and counted in ``skipped_bad_rows``.
        multi_label: read a set of labels per example (records files only; see
            the module docstring); ``labels`` then holds tuples.
        label_separator: what separates the labels of a string field with
            ``multi_label`` (default ``|``).
        group_column: field of a records file holding each example's group
            (``None``: no groups). Label folders take their groups from
            ``urls_<label>.txt`` files when present.

    Returns:
        The examples: in file order for records and TFDS; for label folders
        and archives round-robin across labels, each label's files in name order.

    Raises:
        DataError: missing or unreadable path, malformed row, bad encoding,
            missing column, empty field, no examples, or fewer than
            ``min_classes`` labels.
        ConfigError: ``multi_label`` with label folders, an archive or TFDS, or
            an empty ``label_separator``, or ``group_column`` with anything but a
            records file.
    """
    bad_rows = BadRows(path, on_bad_rows)
    if group_column is not None and (
        path.startswith("tfds:") or os.path.isdir(path) or path.endswith(_ARCHIVE_SUFFIXES)
    ):
        raise ConfigError(
            f"config field 'group_column': {path}: applies to CSV, TSV, JSONL or Parquet "
            f"files (label folders take their groups from urls_<label>.txt files)"
        )
    if multi_label:
        _check_multi_label_source(path, label_separator)
    if path.startswith("tfds:"):
        examples: Iterator[tuple] = _tfds_examples(
            path[len("tfds:") :], split, text_column, label_column
        )
    elif not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory")
    elif os.path.isdir(path):
        examples = folder_examples(path, split)
    elif path.endswith(_ARCHIVE_SUFFIXES):
        examples = archive_examples(path, split)
    else:
        if split != DEFAULT_SPLIT:
            raise DataError(
                f"{path}: --split {split!r} applies to label folders, archives and tfds:, "
                f"not to a single file"
            )
        examples = _record_examples(
            path,
            detect_format(path, format),
            text_column,
            label_column,
            bad_rows,
            label_separator if multi_label else None,
            group_column,
        )
    pairs = list(itertools.islice(examples, max_examples))
    summary = bad_rows.summary()
    if summary:
        log.warning("%s", summary)
    if not pairs:
        raise DataError(f"{path}: no examples found" + (f" ({summary})" if summary else ""))
    groups = [example[2] for example in pairs]
    data = TextClassificationData(
        [example[0] for example in pairs],
        [example[1] for example in pairs],
        path,
        len(bad_rows.rows) if on_bad_rows == "skip" else None,
        multi_label=multi_label,
        groups=None if None in groups else groups,
    )
    labels = data.label_set()
    if len(labels) < min_classes:
        raise DataError(
            f"{path}: found {len(labels)} distinct label ({', '.join(labels)}); "
            f"a classifier needs at least {min_classes}"
        )
    return data


def _check_multi_label_source(path: str, separator: str) -> None:
    """Raise ConfigError unless ``path`` can hold several labels per text."""
    if not separator:
        raise ConfigError(
            "config field 'label_separator': expected a non-empty string; received: ''"
        )
    if path.startswith("tfds:"):
        kind = "TFDS data is read with one label per text"
    elif os.path.isdir(path):
        kind = "a folder of label folders holds one label per text"
    elif path.endswith(_ARCHIVE_SUFFIXES):
        kind = "an archive of label folders holds one label per text"
    else:
        return
    raise ConfigError(
        f"config field 'multi_label': {path}: {kind}; multi-label data must be a CSV, TSV, "
        f"JSONL or Parquet file with labels separated by {separator!r} (or a list)"
    )


def _record_examples(
    path: str,
    format: str,
    text_column: str | None,
    label_column: str | None,
    bad_rows: BadRows,
    separator: str | None = None,
    group_column: str | None = None,
) -> Iterator[tuple[str, str | tuple[str, ...], str | None]]:
    """``(text, label, group)`` per good record (a labels tuple when ``separator`` is set;
    ``group`` is ``None`` without ``group_column``)."""
    pick = partial(_pick_columns, path, text_column, label_column, group_column)
    for keys, record in read_columns(path, format, bad_rows, pick):
        example = _example(record, keys[0], keys[1], bad_rows, separator)
        if example is None:
            continue
        group = None
        if group_column is not None:
            group = _group(record, keys[2], bad_rows)
            if group is None:
                continue
        yield (*example, group)


def _pick_columns(
    path: str,
    text_column: str | None,
    label_column: str | None,
    group_column: str | None,
    fields,
):
    text_key = pick_column(path, text_column, TEXT_COLUMNS, fields, "text")
    label_key = pick_column(path, label_column, LABEL_COLUMNS, fields, "label")
    if text_key == label_key:
        raise DataError(f"{path}: column {text_key!r} cannot be both the text and the label")
    if group_column is None:
        return text_key, label_key
    group_key = pick_column(path, group_column, (), fields, "group")
    if group_key in (text_key, label_key):
        raise DataError(
            f"{path}: column {group_key!r} cannot be both the group and the "
            f"{'text' if group_key == text_key else 'label'}"
        )
    return text_key, label_key, group_key


def _group(record, key: str, bad_rows: BadRows) -> str | None:
    """The group of a record as a stripped string, or ``None`` after reporting a bad row."""
    value = record.fields.get(key)
    if value is None or isinstance(value, (list, dict)):
        reason = "missing group" if key not in record.fields else "null group"
        if value is not None:
            reason = "group not a scalar"
        bad_rows.report(
            record.line, reason, f"field {key!r}: expected a group name; received: {value!r}"
        )
        return None
    group = value.decode() if isinstance(value, bytes) else str(value)
    if not group.strip():
        bad_rows.report(record.line, "empty group", f"field {key!r} is empty")
        return None
    return group.strip()


def _example(
    record, text_key: str, label_key: str, bad_rows: BadRows, separator: str | None = None
) -> tuple[str, str | tuple[str, ...]] | None:
    """``(text, label)`` of a record, or ``None`` after reporting why it is bad.

    With ``separator`` (multi-label) the label is a tuple of labels, see :func:`split_labels`.
    """
    line = record.line
    for key, kind in ((text_key, "text"), (label_key, "label")):
        if key not in record.fields:
            bad_rows.report(line, f"missing {kind}", f"missing field {key!r}")
            return None
    text, label = record.fields[text_key], record.fields[label_key]
    if bad_rows.unit == "row":  # Parquet: a null is an empty field
        for key, value, kind in ((text_key, text, "text"), (label_key, label, "label")):
            if value is None:
                bad_rows.report(line, f"null {kind}", f"field {key!r} is null")
                return None
    if not isinstance(text, str):
        bad_rows.report(
            line, "text not a string", f"field {text_key!r}: expected a string; received: {text!r}"
        )
        return None
    if separator is not None:
        labels = split_labels(label, separator)
        if labels is None:
            bad_rows.report(
                line,
                "null label" if label is None else "not a label list",
                f"field {label_key!r}: expected labels separated by {separator!r} or a list of "
                f"strings or integers; received: {label!r}",
            )
            return None
    elif isinstance(label, (list, dict)) or label is None:
        bad_rows.report(
            line,
            "null label" if label is None else "not one label",
            f"field {label_key!r}: expected one label; received: {label!r}",
        )
        return None
    else:
        label = label.decode() if isinstance(label, bytes) else str(label).strip()
    if not text.strip():
        bad_rows.report(line, "empty text", f"field {text_key!r} is empty")
        return None
    if separator is not None:
        if not labels:
            bad_rows.report(
                line,
                "no labels",
                f"field {label_key!r} has no labels (expected labels separated by "
                f"{separator!r}); received: {label!r}",
            )
            return None
        return text, labels
    if not label.strip():
        bad_rows.report(line, "empty label", f"field {label_key!r} is empty")
        return None
    return text, label.strip()


def split_labels(value, separator: str = LABEL_SEPARATOR) -> tuple[str, ...] | None:
    """The labels of one multi-label field, or ``None`` if it cannot hold labels.

    Args:
        value: a string (or bytes) such as ``"sports | politics"``, split on
            ``separator``; a list of strings/integers (JSONL, Parquet), taken as
            it is; or one integer/scalar label.
        separator: what separates labels in a string (default ``|``).

    Returns:
        The labels as strings, stripped, empty ones dropped, each once, in
        order of first appearance (``()`` when none are left); ``None`` for
        ``None``, a dict, or a list holding ``None``, lists or dicts.
    """
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, (list, tuple)):
        if any(item is None or isinstance(item, (list, tuple, dict)) for item in value):
            return None
        items = [item.decode() if isinstance(item, bytes) else str(item) for item in value]
    else:
        items = (value.decode() if isinstance(value, bytes) else str(value)).split(separator)
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


def _tfds_examples(
    name: str, split: str, text_column: str | None, label_column: str | None
) -> Iterator[tuple[str, str]]:
    import tensorflow_datasets as tfds

    try:
        dataset, info = tfds.load(name, split=split, with_info=True)
    except Exception as e:  # tfds raises many types (not found, network, bad split)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"tfds:{name}: cannot load split {split!r}: {first_line}") from None
    features = info.features
    text_key = pick_column(f"tfds:{name}", text_column, TEXT_COLUMNS, features, "text")
    label_key = pick_column(f"tfds:{name}", label_column, LABEL_COLUMNS, features, "label")
    label_feature = features[label_key]
    names = getattr(label_feature, "names", None)
    for example in tfds.as_numpy(dataset):
        text = example[text_key]
        text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
        label = example[label_key]
        label = (
            names[int(label)]
            if names
            else (label.decode() if isinstance(label, bytes) else str(label))
        )
        if text.strip():  # a published dataset cannot be fixed by the user: skip, and say so
            yield text, label, None
        else:
            log.warning("tfds:%s: skipped an example with empty text", name)
