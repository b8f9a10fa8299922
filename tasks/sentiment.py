"""Sentiment analysis, the many-to-one recipe: a text in, one label (or a set of labels) out.

Defaults train a bidirectional LSTM with max pooling on word ids (IMDB in
about 2 minutes per epoch on a 2-core CPU; see bench/README.md). Top to bottom: config, data, vectorization
and batching, model, metrics, export, serving-side predict/evaluate. The serving function,
export metadata and predict/evaluate on an export are any text classifier's, in
:mod:`seqtasks.classifier_export`.

    python cli.py train sentiment --data ../shared/data/imdb/aclImdb_v1_train.tar.gz
    python cli.py predict saved_models/sentiment "A moving, beautifully acted film."
    python cli.py evaluate saved_models/sentiment --data ../shared/data/sst2/dev.tsv

With ``--multi-label`` (config ``multi_label``) every text has a set of labels
(``"sports|politics"`` in a CSV field, or a JSON/Parquet list): the model gets one
sigmoid unit per label trained with binary cross-entropy, and the export returns
per-label scores and the labels whose score is at least ``threshold``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil

import keras
import numpy as np

from seqtasks.classifier_export import (
    evaluate_classifier_export,
    export_classifier,
    predict_texts,
)
from seqtasks.config import TrainConfig, option
from seqtasks.data.classification import (
    LABEL_SEPARATOR,
    TextClassificationData,
    load_text_classification,
)
from seqtasks.data.pipeline import split_indices, token_batches
from seqtasks.data.records import FORMATS, ON_BAD_ROWS
from seqtasks.errors import ConfigError, DataError, ExportError
from seqtasks.inference import load_keras_model
from seqtasks.labels import export_labels, multi_hot
from seqtasks.metrics import (
    classification_report,
    format_multilabel_report,
    format_report,
    multilabel_report,
)
from seqtasks.models.classifier import POOLINGS, build_text_classifier, replace_head
from seqtasks.models.classifier import freeze as freeze_layers
from seqtasks.models.encoders import ENCODERS, RNN_ACTIVATIONS
from seqtasks.recipe import FinetunePlan, Prepared, Recipe
from seqtasks.text import (
    RESERVED_TOKENS,
    WordVectorizer,
    build_vocabulary,
    out_of_vocabulary,
    write_vocabulary,
)

log = logging.getLogger(__name__)

OOV_WARNING = 0.2  # finetune warns when more of the new data's tokens are out of vocabulary


# --- config ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SentimentConfig(TrainConfig):
    """Defaults of the sentiment recipe (every field can be set with ``--set key=value``)."""

    model: str = option("bilstm", "Encoder architecture.", choices=ENCODERS)
    epochs: int = option(5, "Maximum number of epochs (early stopping may end sooner).", min=1)
    format: str = option(
        "auto", "Data format; auto uses the extension.", choices=("auto", *FORMATS)
    )
    text_column: str | None = option(
        None, "Text field of CSV/TSV/JSONL/Parquet data (default: auto)."
    )
    label_column: str | None = option(
        None, "Label field of CSV/TSV/JSONL/Parquet data (default: auto)."
    )
    on_bad_rows: str = option(
        "error",
        "Malformed rows of a data file: error stops at the first; skip drops them with a "
        "warning (count, first line numbers) and records the count.",
        choices=ON_BAD_ROWS,
    )
    multi_label: bool = option(
        False,
        "Several labels per text (CSV/TSV/JSONL/Parquet): one sigmoid unit per label, binary "
        "cross-entropy; a string label is split on label_separator, a JSON/Parquet list is "
        "taken as it is.",
    )
    label_separator: str = option(
        LABEL_SEPARATOR, "Multi-label: what separates the labels of a text in a string field."
    )
    threshold: float = option(
        0.5,
        "Multi-label: a label is predicted when its probability is >= threshold (metrics, "
        "the export's labels output).",
        above=0.0,
        max=1.0,
    )
    vocabulary_size: int = option(
        30000, "Words in the vocabulary, 4 reserved tokens included.", min=5
    )
    min_frequency: int = option(2, "Leave out words seen fewer times in the training data.", min=1)
    sequence_length: int = option(
        1000, "Tokens kept per text (the first ones); longer texts are truncated.", min=1
    )
    embedding_dim: int = option(128, "Size of the learned word embeddings.", min=1)
    hidden_dim: int = option(64, "Recurrent units per direction.", min=1)
    num_layers: int = option(1, "Stacked recurrent layers or Transformer blocks.", min=1)
    num_heads: int = option(4, "Attention heads per Transformer block.", min=1)
    intermediate_dim: int = option(256, "Feed-forward width of Transformer blocks.", min=1)
    dropout: float = option(
        0.5, "Dropout rate before the output layer and between layers.", min=0.0, max=0.9
    )
    embedding_dropout: float = option(
        0.25, "Drop whole embedding channels per text (SpatialDropout1D).", min=0.0, max=0.9
    )
    recurrent_dropout: float = option(
        0.0, "Dropout on recurrent state (> 0 disables the cuDNN kernel).", min=0.0, max=0.9
    )
    activation: str = option(
        "tanh", "SimpleRNN activation; relu uses identity init (IRNN).", choices=RNN_ACTIVATIONS
    )
    pooling: str = option("max", "Pooling of encoder states over time.", choices=POOLINGS)

    def check(self) -> None:
        """``activation`` other than tanh only for ``rnn``; Transformer ``embedding_dim >=
        num_heads``; a non-empty ``label_separator``."""
        if not self.label_separator:
            raise ConfigError(
                "config field 'label_separator': expected a non-empty string; received: ''"
            )
        if self.activation != "tanh" and self.model != "rnn":
            raise ConfigError(
                f"config field 'activation': {self.activation!r} applies to model 'rnn' only "
                f"(gated cells keep tanh for the cuDNN kernel); received: model={self.model!r}"
            )
        if self.model == "transformer" and self.embedding_dim < self.num_heads:
            raise ConfigError(
                f"config fields 'embedding_dim' and 'num_heads': the Transformer needs "
                f"embedding_dim >= num_heads; received: {self.embedding_dim} and {self.num_heads}"
            )


# --- recipe ------------------------------------------------------------------------------


class SentimentRecipe(Recipe):
    """Many-to-one text classification on the recipe contract of :mod:`seqtasks.recipe`.

    Model: learned embeddings, an encoder from :mod:`seqtasks.models.encoders`,
    masked max-over-time pooling (Collobert et al. 2011, sec. 3.3.2), dropout
    (Srivastava et al. 2014) and a softmax layer, trained with cross-entropy
    and Adam (Kingma & Ba 2015). Export: ``text`` (tf.string ``[None]``) in,
    ``probabilities`` (float32 ``[None, num_classes]``) and ``label``
    (tf.string ``[None]``) out.

    Multi-label (``multi_label=True``): a sigmoid unit per label trained with
    binary cross-entropy, i.e. one binary problem per label sharing the
    encoder (binary relevance, Tsoumakas & Katakis 2007). Export: ``text`` in,
    ``scores`` (float32 ``[None, num_labels]``) and ``labels`` (tf.string
    ``[None, num_labels]``: the labels with score >= ``threshold``, most
    probable first, padded with ``""``) out.
    """

    name = "sentiment"
    task_type = "many-to-one"
    description = (
        "Text classification (sentiment, topics, intents): one label per text, or several "
        "with --multi-label."
    )
    config_class = SentimentConfig
    data_fields = (*Recipe.data_fields, "format", "text_column", "label_column", "on_bad_rows")
    models = {
        "rnn": "SimpleRNN (tanh, or ReLU with identity-initialised recurrent weights)",
        "lstm": "LSTM",
        "gru": "GRU",
        "bilstm": "Bidirectional LSTM, stackable (default)",
        "transformer": "keras-hub TokenAndPositionEmbedding + TransformerEncoder blocks, pooled",
    }
    evaluate_options = frozenset(
        {
            "format",
            "text_column",
            "label_column",
            "split",
            "label_map",
            "max_examples",
            "on_bad_rows",
        }
    )

    # --- data ----------------------------------------------------------------------------

    def load_data(self, config: SentimentConfig) -> TextClassificationData:
        if not config.data:
            raise ConfigError(
                "no training data: pass --data PATH (a file, a folder or tfds:<name>)"
            )
        return load_text_classification(
            config.data,
            format=config.format,
            text_column=config.text_column,
            label_column=config.label_column,
            max_examples=config.max_examples,
            on_bad_rows=config.on_bad_rows,
            multi_label=config.multi_label,
            label_separator=config.label_separator,
        )

    def prepare(
        self, config: SentimentConfig, data: TextClassificationData, run_dir: str
    ) -> Prepared:
        labels = data.label_set()
        train_idx, val_idx = split_indices(len(data), config.validation_split, config.seed)
        train_texts = [data.texts[i] for i in train_idx]

        vocabulary = build_vocabulary(train_texts, config.vocabulary_size, config.min_frequency)
        if len(vocabulary) == len(RESERVED_TOKENS):
            raise DataError(
                f"{config.data}: no word occurs {config.min_frequency} times in the training "
                f"split; lower min_frequency (--set min_frequency=1)"
            )
        vocabulary_file = write_vocabulary(vocabulary, os.path.join(run_dir, "vocabulary.txt"))
        vectorizer = WordVectorizer(vocabulary_file, config.sequence_length)
        return self._batches(config, data, labels, vectorizer, train_idx, val_idx)

    def _batches(self, config, data, labels, vectorizer, train_idx, val_idx) -> Prepared:
        """Training and validation pipelines of ``data`` with ``labels`` (their order = ids).

        Targets: int32 class ids ``(N,)``, or for multi-label data float32
        multi-hot rows ``(N, len(labels))``.
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
        batches = dict(batch_size=config.batch_size, seed=config.seed)
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
            info={
                "vectorizer": vectorizer,
                "labels": labels,
                "multi_label": data.multi_label,
                "threshold": config.threshold,
            },
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

    # --- fine-tuning ---------------------------------------------------------------------

    def plan_finetune(
        self,
        config: SentimentConfig,
        data: TextClassificationData,
        version_dir: str,
        metadata: dict,
        *,
        new_head: bool = False,
        freeze: str = "none",
    ) -> FinetunePlan:
        """Load the export's Keras model and vocabulary; check the new data's labels and words.

        Labels: the model's (or a subset) continue its head; others fail
        unless ``new_head``, which puts a fresh softmax layer (sigmoid units for
        a multi-label model) for the data's labels over the old encoder. The share of the data's tokens missing
        from the vocabulary is logged (a warning above ``OOV_WARNING``) and
        recorded in the plan's metadata.

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
                    f"{config.data}: label{'s' if len(unknown) > 1 else ''} "
                    f"{', '.join(map(repr, unknown))} not known to the model "
                    f"({', '.join(model_labels)}); pass --new-head to train a fresh "
                    "classification head for the new labels"
                )
            labels = model_labels
        model_file = os.path.join(version_dir, "assets.extra", "model.keras")
        vocabulary_file = os.path.join(version_dir, "assets", "vocabulary.txt")
        for path in (model_file, vocabulary_file):
            if not os.path.isfile(path):
                raise ExportError(f"{version_dir}: cannot fine-tune: the export lacks {path}")
        vectorizer = WordVectorizer(vocabulary_file, config.sequence_length)
        oov = out_of_vocabulary(vectorizer, data.texts)
        share = oov["share"]
        message = "%.1f%% of the new data's tokens (%d of %d) are not in the model's vocabulary"
        if share > OOV_WARNING:
            log.warning(
                message + " (above %d%%: the model sees many [UNK]s; consider training "
                "from scratch with `train`)",
                100 * share,
                oov["tokens"],
                oov["total"],
                round(100 * OOV_WARNING),
            )
        else:
            log.info(message, 100 * share, oov["tokens"], oov["total"])
        model = load_keras_model(model_file)
        if new_head:
            model = replace_head(model, len(labels), multi_label=config.multi_label)
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
            copy = os.path.join(run_dir, "vocabulary.txt")
            shutil.copyfile(vocabulary_file, copy)
            train_idx, val_idx = split_indices(len(data), config.validation_split, config.seed)
            prepared = self._batches(
                config,
                data,
                labels,
                WordVectorizer(copy, config.sequence_length),
                train_idx,
                val_idx,
            )
            prepared.metadata.update({"finetuned_from": facts["finetuned_from"], "finetune": facts})
            return prepared

        return FinetunePlan(model=model, prepare=prepare, metadata=facts)

    # --- model ---------------------------------------------------------------------------

    def build_model(self, config: SentimentConfig, prepared: Prepared) -> keras.Model:
        return build_text_classifier(
            num_classes=len(prepared.info["labels"]),
            vocabulary_size=prepared.info["vectorizer"].vocabulary_size,
            sequence_length=config.sequence_length,
            kind=config.model,
            pooling=config.pooling,
            dropout=config.dropout,
            multi_label=config.multi_label,
            embedding_dim=config.embedding_dim,
            hidden_dim=config.hidden_dim,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            intermediate_dim=config.intermediate_dim,
            recurrent_dropout=config.recurrent_dropout,
            embedding_dropout=config.embedding_dropout,
            activation=config.activation,
        )

    def loss_and_metrics(self, config):
        """Cross-entropy and accuracy; for multi-label binary cross-entropy (mean over
        labels), binary accuracy and micro-F1 at ``config.threshold``."""
        if config.multi_label:
            return keras.losses.BinaryCrossentropy(), [
                keras.metrics.BinaryAccuracy(name="binary_accuracy", threshold=config.threshold),
                keras.metrics.F1Score(average="micro", threshold=config.threshold, name="micro_f1"),
            ]
        return keras.losses.SparseCategoricalCrossentropy(), [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        ]

    # --- metrics -------------------------------------------------------------------------

    def evaluate(self, model: keras.Model, prepared: Prepared, config: SentimentConfig) -> dict:
        """Loss, accuracy, macro-F1 and confusion matrix on the validation split (one pass).

        Multi-label: binary cross-entropy, subset accuracy, micro- and macro-F1
        at ``prepared.info["threshold"]``.
        """
        probabilities, targets = [], []
        for token_ids, batch_targets in prepared.validation:
            probabilities.append(model.predict_on_batch(token_ids))
            targets.append(batch_targets.numpy())
        probabilities, y_true = np.concatenate(probabilities), np.concatenate(targets)
        if prepared.info.get("multi_label"):  # y_true: multi-hot (N, L)
            p = np.clip(probabilities, 1e-7, 1 - 1e-7)
            loss = -np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
            report = multilabel_report(
                y_true > 0.5, probabilities >= prepared.info["threshold"], prepared.info["labels"]
            )
            return {
                "val_loss": float(loss),
                "val_subset_accuracy": report["subset_accuracy"],
                "val_micro_f1": report["micro_f1"],
                "val_macro_f1": report["macro_f1"],
            }
        report = classification_report(
            y_true, np.argmax(probabilities, axis=-1), prepared.info["labels"]
        )
        true_class = probabilities[np.arange(len(y_true)), y_true]
        loss = -np.mean(np.log(np.clip(true_class, 1e-7, 1.0)))  # as Keras' cross-entropy
        return {
            "val_loss": float(loss),
            "val_accuracy": report["accuracy"],
            "val_macro_f1": report["macro_f1"],
            "val_confusion_matrix": report["confusion_matrix"],
        }

    # --- export --------------------------------------------------------------------------

    def export(self, model, prepared: Prepared, config: SentimentConfig, metadata: dict) -> str:
        return export_classifier(
            model,
            prepared.info["vectorizer"],
            prepared.info["labels"],
            config.export_dir,
            describe={
                "task": self.name,
                "task_type": self.task_type,
                "model": config.model,
                "config": config.to_dict(),
            },
            multi_label=config.multi_label,
            threshold=config.threshold,
            facts={**prepared.metadata, **metadata},
        )

    # --- serving side --------------------------------------------------------------------

    def predict(self, version_dir: str, metadata: dict, inputs: list[str]) -> list[dict]:
        """Labels and class probabilities of raw texts from the exported SavedModel.

        Multi-label exports give ``{"text", "labels": [labels with score >=
        threshold, most probable first], "scores": {label: probability}}``.
        """
        return predict_texts(version_dir, metadata, inputs)

    def evaluate_export(self, version_dir: str, metadata: dict, **options) -> dict:
        """Accuracy, macro-F1, per-class scores and confusion matrix of the export on ``data``.

        ``options``: ``data`` and :attr:`evaluate_options` (keyword arguments of
        :func:`~seqtasks.classifier_export.evaluate_classifier_export`). A
        multi-label export reads ``data`` with several labels per text (split
        on the ``label_separator`` it was trained with) and reports
        :func:`~seqtasks.metrics.multilabel_report`'s scores at its ``threshold``.
        With ``on_bad_rows="skip"`` the report has ``skipped_bad_rows``.
        """
        return evaluate_classifier_export(version_dir, metadata, **options)

    def format_prediction(self, result: dict) -> str:
        """``label<TAB>probability<TAB>text`` (text cut at 100 characters).

        Multi-label: ``label1 p1, label2 p2<TAB>text`` for the labels at or
        above the threshold, most probable first; ``(none)`` when there are none.
        """
        text = result["text"]
        text = text[:100] + ("…" if len(text) > 100 else "")
        if "scores" in result:
            found = ", ".join(f"{x} {result['scores'][x]:.4f}" for x in result["labels"])
            return f"{found or '(none)'}\t{text}"
        p = result["probabilities"][result["label"]]
        return f"{result['label']}\t{p:.4f}\t{text}"

    def format_report(self, report: dict) -> str:
        if "subset_accuracy" in report:
            return format_multilabel_report(report)
        return format_report(report)
