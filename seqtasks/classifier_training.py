"""Training a text classifier (many-to-one): the train/validation batches of labelled texts,
the validation metrics of the trained in-memory model, and the plan to fine-tune an
exported classifier on new data.

Targets are int32 class ids ``(N,)``, or for multi-label data float32 multi-hot
rows ``(N, num_labels)`` (:func:`seqtasks.labels.multi_hot`); label ids follow
the order of the label list a recipe passes in.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable

import numpy as np

from seqtasks.data.classification import TextClassificationData
from seqtasks.data.pipeline import token_batches
from seqtasks.diagnostics import one_class, warn_if_undertrained
from seqtasks.errors import DataError, ExportError
from seqtasks.inference import load_keras_model
from seqtasks.labels import export_labels, multi_hot
from seqtasks.lm_transfer import vectorizer_for
from seqtasks.metrics import classification_report, multilabel_report
from seqtasks.models.classifier import freeze as freeze_layers
from seqtasks.models.classifier import replace_head
from seqtasks.recipe import FinetunePlan, Prepared, Recipe
from seqtasks.text import WordVectorizer, out_of_vocabulary

log = logging.getLogger("tasks.sentiment")  # the recipe's log name, as before the move


@dataclasses.dataclass
class ClassifierInfo:
    """``Prepared.info`` of a text classifier (what :func:`classifier_batches` hands on).

    Attributes:
        vectorizer: the :class:`~seqtasks.text.WordVectorizer` (text -> token ids).
        labels: every label, in output order (label id = index).
        multi_label: whether targets are multi-hot rows (sigmoid outputs).
        threshold: the multi-label decision threshold (probability >= threshold).
        embeddings: float32 ``(vocabulary_size, embedding_dim)`` rows the embedding layer
            starts from (:mod:`seqtasks.embeddings`), or ``None`` (random initialisation).
        language_model: the :class:`~seqtasks.lm_transfer.PretrainedLanguageModel` the
            classifier starts from (``init_from``), or ``None``.
    """

    vectorizer: WordVectorizer
    labels: list[str]
    multi_label: bool
    threshold: float
    embeddings: np.ndarray | None = None
    language_model: object | None = None


def classifier_batches(
    data: TextClassificationData,
    labels: list[str],
    vectorizer: WordVectorizer,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    threshold: float = 0.5,
) -> Prepared:
    """Training and validation pipelines of ``data`` with ``labels`` (their order = ids).

    Args:
        data: the labelled texts; ``data.multi_label`` picks the targets.
        labels: every label of ``data`` (more are allowed), in output order.
        vectorizer: turns a text into token ids.
        train_idx: int indices of the training examples in ``data``.
        val_idx: int indices of the validation examples.
        batch_size: examples per batch.
        seed: shuffle seed of the training batches.
        threshold: multi-label decision threshold, kept in ``info`` for
            :func:`validation_metrics` (default 0.5).

    Returns:
        A :class:`~seqtasks.recipe.Prepared` whose ``train``/``validation``
        yield int32 ``token_ids`` ``(batch, padded_length)`` and targets: int32
        class ids ``(batch,)``, or float32 multi-hot ``(batch, len(labels))``.
        ``info``: a :class:`ClassifierInfo`.
        ``metadata``: ``labels``, ``data`` (example counts, mean labels per
        example for multi-label data, skipped bad rows) and ``vocabulary_size``.

    Raises:
        KeyError: for a label of ``data`` missing from ``labels``.
    """
    label_id = {label: i for i, label in enumerate(labels)}
    if data.multi_label:
        label_ids = multi_hot(data.labels, label_id)
    else:
        label_ids = np.array([label_id[label] for label in data.labels], dtype=np.int32)
    log.info(
        "%d training / %d validation examples, %d labels, vocabulary of %d",
        len(train_idx),
        len(val_idx),
        len(labels),
        vectorizer.vocabulary_size,
    )
    batches = dict(batch_size=batch_size, seed=seed)
    return Prepared(
        train=token_batches(
            [data.texts[i] for i in train_idx],
            label_ids[train_idx],
            vectorizer,
            shuffle=True,
            **batches,
        ),
        validation=token_batches(
            [data.texts[i] for i in val_idx],
            label_ids[val_idx],
            vectorizer,
            shuffle=False,
            **batches,
        ),
        info=ClassifierInfo(vectorizer, labels, data.multi_label, threshold),
        metadata={
            "labels": labels,
            "data": {
                "examples": len(data),
                "train_examples": len(train_idx),
                "validation_examples": len(val_idx),
                **(
                    {"labels_per_example": round(float(label_ids.sum(axis=1).mean()), 4)}
                    if data.multi_label
                    else {}
                ),
                **(
                    {"skipped_bad_rows": data.skipped_bad_rows}
                    if data.skipped_bad_rows is not None
                    else {}
                ),
            },
            "vocabulary_size": vectorizer.vocabulary_size,
        },
    )


def validation_metrics(model, prepared: Prepared) -> dict:
    """Loss, accuracy, macro-F1 and confusion matrix on ``prepared.validation`` (one pass).

    Args:
        model: maps int32 token ids ``(batch, T)`` to float32 probabilities
            ``(batch, len(labels))``.
        prepared: from :func:`classifier_batches` (reads ``info.labels``,
            ``info.multi_label`` and ``info.threshold``).

    Returns:
        ``val_loss`` (cross-entropy, probabilities clipped to ``[1e-7, 1]`` as
        Keras does), ``val_accuracy``, ``val_macro_f1`` and
        ``val_confusion_matrix``. Multi-label: ``val_loss`` (binary
        cross-entropy, mean over labels), ``val_subset_accuracy``,
        ``val_micro_f1`` and ``val_macro_f1`` at ``info.threshold``. A model that
        predicts one class (one label set) for every example gets an "undertrained"
        warning (:mod:`seqtasks.diagnostics`).
    """
    probabilities, targets = [], []
    for token_ids, batch_targets in prepared.validation:
        probabilities.append(model.predict_on_batch(token_ids))
        targets.append(batch_targets.numpy())
    probabilities, y_true = np.concatenate(probabilities), np.concatenate(targets)
    labels = prepared.info.labels
    if prepared.info.multi_label:  # y_true: multi-hot (N, L)
        p = np.clip(probabilities, 1e-7, 1 - 1e-7)
        loss = -np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
        predicted = probabilities >= prepared.info.threshold
        report = multilabel_report(y_true > 0.5, predicted, labels)
        warn_if_undertrained(
            log, one_class(label_sets(predicted, labels), label_sets(y_true > 0.5, labels))
        )
        return {
            "val_loss": float(loss),
            "val_subset_accuracy": report["subset_accuracy"],
            "val_micro_f1": report["micro_f1"],
            "val_macro_f1": report["macro_f1"],
        }
    predicted = np.argmax(probabilities, axis=-1)
    report = classification_report(y_true, predicted, labels)
    warn_if_undertrained(log, one_class([labels[i] for i in predicted], y_true.tolist()))
    true_class = probabilities[np.arange(len(y_true)), y_true]
    loss = -np.mean(np.log(np.clip(true_class, 1e-7, 1.0)))  # as Keras' cross-entropy
    return {
        "val_loss": float(loss),
        "val_accuracy": report["accuracy"],
        "val_macro_f1": report["macro_f1"],
        "val_confusion_matrix": report["confusion_matrix"],
    }


def label_sets(rows, labels: list[str]) -> list[tuple[str, ...]]:
    """The labels of each bool row ``(N, L)`` of a multi-label prediction or target."""
    return [tuple(labels[j] for j in np.flatnonzero(row)) for row in np.asarray(rows)]


def plan_classifier_finetune(
    data: TextClassificationData,
    version_dir: str,
    metadata: dict,
    batches: Callable[[list[str], WordVectorizer], Prepared],
    *,
    where: str,
    sequence_length: int,
    multi_label: bool = False,
    new_head: bool = False,
    freeze: str = "none",
    oov_warning: float = 0.2,
) -> FinetunePlan:
    """Load a classifier export's Keras model and vocabulary; check the new data's labels and words.

    Labels: the model's (or a subset) continue its head; others fail unless
    ``new_head``, which puts a fresh softmax layer (sigmoid units when
    ``multi_label``) for the data's labels over the old encoder
    (:func:`~seqtasks.models.classifier.replace_head`). The share of the
    data's tokens missing from the vocabulary is logged (a warning above
    ``oov_warning``) and recorded in the plan's metadata.

    Args:
        data: the new labelled texts.
        version_dir: the export's version folder (``assets.extra/model.keras``,
            ``assets/vocabulary.txt``).
        metadata: its metadata (the ``labels`` list).
        batches: ``batches(labels, vectorizer)`` makes the train/validation
            pipelines (e.g. with :func:`classifier_batches`); called by the
            plan's ``prepare(run_dir)`` with the vocabulary copied into ``run_dir``.
        where: names the data in errors (its path).
        sequence_length: tokens kept per text.
        multi_label: a fresh head has sigmoid units (default ``False``).
        new_head: train a fresh head for the data's labels (default ``False``).
        freeze: which layers to freeze, see :func:`~seqtasks.models.classifier.freeze`
            (default ``"none"``).
        oov_warning: warn when more of the data's tokens than this share are
            out of vocabulary (default 0.2).

    Returns:
        A :class:`~seqtasks.recipe.FinetunePlan` whose metadata has
        ``finetuned_from``, ``source_labels``, ``new_head``, ``freeze``,
        ``frozen_layers`` and ``out_of_vocabulary``; its ``prepare`` adds
        ``finetuned_from`` and ``finetune`` (those facts) to the run's metadata.

    Raises:
        ExportError: if the export lacks its Keras model or vocabulary.
        DataError: for labels the model does not know without ``new_head``.
    """
    model_labels = export_labels(version_dir, metadata)
    data_labels = data.label_set()
    if new_head:
        labels = data_labels
    else:
        unknown = [label for label in data_labels if label not in model_labels]
        if unknown:
            raise DataError(
                f"{where}: label{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))} not known to the model "
                f"({', '.join(model_labels)}); pass --new-head to train a fresh "
                "classification head for the new labels"
            )
        labels = model_labels
    model_file = os.path.join(version_dir, "assets.extra", "model.keras")
    # A classifier's own word vocabulary is a SavedModel asset; one started from a language
    # model keeps the language model's vocabulary in assets.extra.
    preprocessing = metadata.get("preprocessing") or {}
    vocabulary_file = os.path.join(
        version_dir,
        "assets.extra" if preprocessing.get("language_model_tokenizer") else "assets",
        "vocabulary.txt",
    )
    for path in (model_file, vocabulary_file):
        if not os.path.isfile(path):
            raise ExportError(f"{version_dir}: cannot fine-tune: the export lacks {path}")
    vectorizer = vectorizer_for(preprocessing, vocabulary_file, sequence_length)
    oov = out_of_vocabulary(vectorizer, data.texts)
    share = oov["share"]
    message = "%.1f%% of the new data's tokens (%d of %d) are not in the model's vocabulary"
    if share > oov_warning:
        log.warning(
            message + " (above %d%%: the model sees many [UNK]s; consider training "
            "from scratch with `train`)",
            100 * share,
            oov["tokens"],
            oov["total"],
            round(100 * oov_warning),
        )
    else:
        log.info(message, 100 * share, oov["tokens"], oov["total"])
    model = load_keras_model(model_file)
    if new_head:
        model = replace_head(model, len(labels), multi_label=multi_label)
    frozen = freeze_layers(model, freeze)
    if frozen:
        log.info("frozen (%s): %s", freeze, ", ".join(frozen))
    facts = {
        "finetuned_from": os.path.abspath(version_dir),
        "source_labels": model_labels,
        "new_head": bool(new_head),
        "freeze": freeze,
        "frozen_layers": frozen,
        "out_of_vocabulary": oov,
    }

    def prepare(run_dir: str) -> Prepared:
        vectorizer = vectorizer_for(
            preprocessing, os.path.join(run_dir, "vocabulary.txt"), sequence_length
        )
        return batches(labels, vectorizer)

    return Recipe.finetune_plan(model, facts, prepare, {vocabulary_file: "vocabulary.txt"})
