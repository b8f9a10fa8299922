"""Labels of classification data and exports: multi-hot targets, the label list an export
stores, and matching evaluation data's labels to a model's."""

from __future__ import annotations

import logging

import numpy as np

from seqtasks.data.classification import is_integer_label
from seqtasks.errors import DataError, ExportError

log = logging.getLogger("tasks.sentiment")  # the recipe's log name, as before the move


def multi_hot(label_sets, label_id: dict[str, int]) -> np.ndarray:
    """float32 ``(len(label_sets), len(label_id))``: 1 where a text has the label, else 0."""
    targets = np.zeros((len(label_sets), len(label_id)), dtype=np.float32)
    for i, labels in enumerate(label_sets):
        targets[i, [label_id[label] for label in labels]] = 1.0
    return targets


def export_labels(version_dir: str, metadata: dict) -> list[str]:
    """The label list stored in a sentiment export's metadata.

    Raises:
        ExportError: if it is missing or not a list of strings.
    """
    labels = metadata.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ExportError(f"{version_dir}: export metadata has no valid 'labels' list")
    return labels


def match_labels(
    data_labels: list[str], model_labels: list[str], label_map: dict[str, str] | None, where: str
) -> dict[str, str]:
    """Map each label found in evaluation data to one of the model's labels.

    In order: an explicit ``label_map``; identical names; integer labels
    ``0..K-1`` taken as indices into the model's (sorted) labels, so SST-2's
    ``0``/``1`` match IMDB's ``neg``/``pos``.

    Raises:
        DataError: if a data label cannot be matched, naming it and the model's labels.
    """
    if label_map:
        unknown = sorted(set(label_map.values()) - set(model_labels))
        if unknown:
            raise DataError(
                f"--label-map: {unknown[0]!r} is not a label of the model "
                f"(expected one of: {', '.join(model_labels)})"
            )
        mapping = {label: label_map.get(label, label) for label in data_labels}
    elif set(data_labels) <= set(model_labels):
        mapping = {label: label for label in data_labels}
    elif all(map(is_integer_label, data_labels)) and all(
        0 <= int(label) < len(model_labels) for label in data_labels
    ):
        mapping = {label: model_labels[int(label)] for label in data_labels}
        log.warning(
            "integer labels taken as indices into the model's labels: %s",
            ", ".join(f"{k}={v}" for k, v in sorted(mapping.items())),
        )
    else:
        mapping = {label: label for label in data_labels}
    unknown = sorted(label for label, target in mapping.items() if target not in model_labels)
    if unknown:
        raise DataError(
            f"{where}: label {unknown[0]!r} is not one the model knows "
            f"({', '.join(model_labels)}); pass --label-map DATA=MODEL,..."
        )
    return mapping
