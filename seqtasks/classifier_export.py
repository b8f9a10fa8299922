"""Exports of a text classifier (many-to-one): the serving function, its signature and
metadata, and predict/evaluate on an exported classifier.

A classifier export takes ``text`` (tf.string ``[None]``, raw text) and returns,
for a single-label model, ``probabilities`` (float32 ``[None, num_classes]``)
and ``label`` (tf.string ``[None]``); for a multi-label model ``scores``
(float32 ``[None, num_labels]``) and ``labels`` (tf.string ``[None,
num_labels]``: the labels with score >= ``threshold``, most probable first,
padded with ``""``). The label list, ``multi_label`` and ``threshold`` are in
the export's metadata.

Writing (:func:`export_classifier`) needs the TensorFlow backend; the serving
side (:func:`predict_texts`, :func:`evaluate_classifier_export`) calls the
SavedModel's ``serving_default`` signature and needs no model code.
"""

from __future__ import annotations

import logging
import shutil

import numpy as np
import tensorflow as tf

from seqtasks import export as exporting
from seqtasks.data.classification import LABEL_SEPARATOR, load_text_classification
from seqtasks.diagnostics import one_class, warn_if_undertrained
from seqtasks.inference import call_in_batches, load_serving_fn
from seqtasks.labels import export_labels, match_labels, multi_hot
from seqtasks.lm_transfer import LanguageModelVectorizer, preprocessing_of
from seqtasks.metrics import classification_report, multilabel_report
from seqtasks.progress import Progress, counting_calls
from seqtasks.text import WordVectorizer, call_by_length
from seqtasks.versions import package_versions

log = logging.getLogger("tasks.sentiment")  # the recipe's log name

INPUTS = {"text": "tf.string [None]: raw text"}
SINGLE_LABEL_OUTPUTS = {
    "probabilities": "tf.float32 [None, num_classes], in the order of 'labels'",
    "label": "tf.string [None]: the most probable label",
}
MULTI_LABEL_OUTPUTS = {
    "scores": "tf.float32 [None, num_labels]: each label's probability (independent "
    "sigmoids), in the order of 'labels'",
    "labels": "tf.string [None, num_labels]: the labels whose score is >= "
    "'threshold', most probable first, padded with empty strings",
}


def serving_function(
    model,
    vectorizer: WordVectorizer,
    labels: list[str],
    *,
    multi_label: bool = False,
    threshold: float = 0.5,
):
    """The export's ``serving_default`` function: raw texts in, scores and labels out.

    Texts of similar length share a model call (:func:`seqtasks.text.call_by_length`),
    so little padding is computed.

    Args:
        model: maps int32 token ids ``(batch, T)`` (right-padded with 0) to
            float32 ``(batch, len(labels))`` probabilities (softmax rows, or one
            sigmoid per label when ``multi_label``).
        vectorizer: turns raw text into the model's token ids.
        labels: label names in the order of the model's outputs.
        multi_label: return per-label ``scores`` and thresholded ``labels``
            instead of ``probabilities`` and the argmax ``label`` (default ``False``).
        threshold: multi-label only: a label is returned when its score is
            >= ``threshold`` (default 0.5).

    Returns:
        A function of tf.string ``text`` ``(batch,)`` returning a dict:
        ``{"probabilities": float32 (batch, C), "label": string (batch,)}``, or
        with ``multi_label`` ``{"scores": float32 (batch, L), "labels": string
        (batch, L)}`` (most probable first, padded with ``""``).
    """
    label_table = tf.constant(labels)
    width = len(labels)

    def run_model(token_ids):  # (chunk, T) int32 -> (chunk, width) float32
        return model(token_ids, training=False)

    def serve(text):
        probabilities = call_by_length(run_model, vectorizer(text), width)  # (B, C)
        label = tf.gather(label_table, tf.argmax(probabilities, axis=-1))  # (B,) string
        return {"probabilities": probabilities, "label": label}

    def serve_multi_label(text):
        # (B, L) float32, one sigmoid per label
        scores = call_by_length(run_model, vectorizer(text), width)
        order = tf.argsort(scores, axis=-1, direction="DESCENDING", stable=True)  # (B, L)
        ranked = tf.gather(scores, order, batch_dims=1)  # (B, L) float32
        names = tf.gather(label_table, order)  # (B, L) string
        found = tf.where(ranked >= threshold, names, "")  # (B, L) string
        return {"scores": scores, "labels": found}

    return serve_multi_label if multi_label else serve


def export_classifier(
    model,
    vectorizer: WordVectorizer,
    labels: list[str],
    export_dir: str,
    *,
    describe: dict,
    multi_label: bool = False,
    threshold: float = 0.5,
    facts: dict | None = None,
) -> str:
    """Write the next version of a classifier export into ``export_dir``.

    The SavedModel's ``serving_default`` is :func:`serving_function` with
    input ``text`` (tf.string ``[None]``); ``model`` is also saved as
    ``assets.extra/model.keras`` (for fine-tuning) and the vocabulary as an asset.

    Args:
        model: the trained Keras classifier (see :func:`serving_function`).
        vectorizer: its :class:`~seqtasks.text.WordVectorizer`.
        labels: label names in the order of the model's outputs.
        export_dir: the model's base folder (versions ``1``, ``2``, ... inside).
        describe: the first metadata keys (``task``, ``task_type``, ``model``,
            ``config``).
        multi_label: export the multi-label signature (default ``False``).
        threshold: multi-label only, see :func:`serving_function`; recorded
            in the metadata.
        facts: the last metadata keys (``labels``, data facts, metrics, ...);
            they win over the keys added here.

    Returns:
        The new version folder.
    """
    serve = serving_function(
        model, vectorizer, labels, multi_label=multi_label, threshold=threshold
    )
    signature = [tf.TensorSpec([None], tf.string, name="text")]
    outputs = MULTI_LABEL_OUTPUTS if multi_label else SINGLE_LABEL_OUTPUTS
    return exporting.write_version(
        export_dir,
        lambda path: exporting.save_serving_archive(path, [model, vectorizer], serve, signature),
        metadata={
            **describe,
            "signature": {"inputs": dict(INPUTS), "outputs": dict(outputs)},
            "multi_label": multi_label,
            **({"threshold": threshold} if multi_label else {}),
            "preprocessing": preprocessing_of(vectorizer),
            **(
                {"requires": ["tensorflow", "tensorflow_text"]}
                if getattr(vectorizer, "kind", "word") == "wordpiece"
                else {}
            ),
            "versions": package_versions(),
            **(facts or {}),
        },
        extra_files={
            "model.keras": model.save,
            # The language model's vocabulary, for fine-tuning (a WordPiece vocabulary is
            # no SavedModel asset).
            **(
                {"vocabulary.txt": lambda path: shutil.copyfile(vectorizer.vocabulary_file, path)}
                if isinstance(vectorizer, LanguageModelVectorizer)
                else {}
            ),
        },
    )


def import_requirements(metadata: dict) -> None:
    """Import what the export's ops need before it is loaded: ``tensorflow_text`` for a
    classifier started from a WordPiece language model (``requires`` in the metadata)."""
    if "tensorflow_text" in (metadata.get("requires") or []):
        import tensorflow_text  # noqa: F401  (registers the WordPiece ops)


def predict_texts(version_dir: str, metadata: dict, inputs: list[str]) -> list[dict]:
    """Labels and class probabilities of raw texts from an exported classifier.

    Returns:
        One dict per input, in input order: ``{"text", "label", "probabilities":
        {label: probability}}``; for a multi-label export ``{"text", "labels":
        [labels with score >= threshold, most probable first], "scores":
        {label: probability}}``.

    Raises:
        ExportError: if the export cannot be loaded or its metadata has no
            valid ``labels`` list.
    """
    labels = export_labels(version_dir, metadata)
    import_requirements(metadata)
    outputs = call_in_batches(load_serving_fn(version_dir), "text", inputs, sort_key=len)
    if metadata.get("multi_label"):
        return [
            {
                "text": text,
                "labels": [x.decode("utf-8") for x in outputs["labels"][i] if x],
                "scores": {label: float(p) for label, p in zip(labels, outputs["scores"][i])},
            }
            for i, text in enumerate(inputs)
        ]
    return [
        {
            "text": text,
            "label": outputs["label"][i].decode("utf-8"),
            "probabilities": {
                label: float(p) for label, p in zip(labels, outputs["probabilities"][i])
            },
        }
        for i, text in enumerate(inputs)
    ]


def evaluate_classifier_export(
    version_dir: str,
    metadata: dict,
    *,
    data: str,
    format: str | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    split: str = "train",
    label_map: dict[str, str] | None = None,
    max_examples: int | None = None,
    on_bad_rows: str = "error",
) -> dict:
    """Accuracy, macro-F1, per-class scores and confusion matrix of an export on ``data``.

    ``data`` is read with :func:`~seqtasks.data.classification.load_text_classification`
    (``format`` ... ``on_bad_rows`` are its options; one class is enough) and
    its labels matched to the export's with
    :func:`~seqtasks.labels.match_labels` (``label_map`` first). A
    multi-label export reads ``data`` with several labels per text (split on
    the ``label_separator`` it was trained with) and reports
    :func:`~seqtasks.metrics.multilabel_report`'s scores at its
    ``threshold`` (default 0.5), with ``threshold`` added.

    Returns:
        :func:`~seqtasks.metrics.classification_report`'s (or the multi-label)
        report plus ``data``; ``skipped_bad_rows`` with ``on_bad_rows="skip"``;
        ``label_map`` when a data label was renamed.

    Raises:
        DataError: for unreadable data or a label the export does not know.
        ExportError: if the export cannot be loaded or has no valid ``labels``.
    """
    multi_label = bool(metadata.get("multi_label"))
    saved = metadata.get("config") if isinstance(metadata.get("config"), dict) else {}
    dataset = load_text_classification(
        data,
        format=format,
        text_column=text_column,
        label_column=label_column,
        split=split,
        max_examples=max_examples,
        min_classes=1,
        on_bad_rows=on_bad_rows,
        multi_label=multi_label,
        label_separator=saved.get("label_separator", LABEL_SEPARATOR),
    )
    labels = export_labels(version_dir, metadata)
    mapping = match_labels(dataset.label_set(), labels, label_map, data)
    label_id = {label: i for i, label in enumerate(labels)}
    import_requirements(metadata)
    fn = load_serving_fn(version_dir)
    bar = Progress("classifying", len(dataset.texts), "texts")
    fn = counting_calls(fn, bar, "text")
    if multi_label:
        threshold = float(metadata.get("threshold", 0.5))
        y_true = multi_hot([[mapping[label] for label in row] for row in dataset.labels], label_id)
        scores = call_in_batches(fn, "text", dataset.texts, sort_key=len)["scores"]
        bar.close()
        report = multilabel_report(y_true > 0.5, scores >= threshold, labels)
        report["threshold"] = threshold
        found = [tuple(labels[j] for j in np.flatnonzero(row)) for row in scores >= threshold]
        warn_if_undertrained(log, one_class(found, [tuple(row) for row in dataset.labels]))
    else:
        y_true = np.array([label_id[mapping[label]] for label in dataset.labels])
        probabilities = call_in_batches(fn, "text", dataset.texts, sort_key=len)["probabilities"]
        bar.close()
        predicted = np.argmax(probabilities, axis=-1)
        report = classification_report(y_true, predicted, labels)
        warn_if_undertrained(log, one_class([labels[i] for i in predicted], y_true.tolist()))
    report["data"] = data
    if dataset.skipped_bad_rows is not None:
        report["skipped_bad_rows"] = dataset.skipped_bad_rows
    if any(k != v for k, v in mapping.items()):
        report["label_map"] = mapping
    return report
