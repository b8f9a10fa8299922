"""Sentiment analysis, the many-to-one recipe: a text in, one label (or a set of labels) out.

Defaults train a bidirectional LSTM with max pooling on word ids (IMDB in
about 2 minutes per epoch on a 2-core CPU; see bench/README.md). Top to bottom: config,
data and vocabulary, fine-tuning, model, loss and metrics, export, serving-side
predict/evaluate. What any text classifier shares lives in seqtasks: batches, validation
metrics and fine-tuning plans in :mod:`seqtasks.classifier_training`; the serving function,
export metadata and predict/evaluate on an export in :mod:`seqtasks.classifier_export`.

    python cli.py train sentiment --data ../shared/data/imdb/aclImdb_v1_train.tar.gz
    python cli.py predict saved_models/sentiment "A moving, beautifully acted film."
    python cli.py evaluate saved_models/sentiment --data ../shared/data/sst2/dev.tsv

With ``--multi-label`` (config ``multi_label``) every text has a set of labels
(``"sports|politics"`` in a CSV field, or a JSON/Parquet list): the model gets one
sigmoid unit per label trained with binary cross-entropy, and the export returns
per-label scores and the labels whose score is at least ``threshold``.
"""

from __future__ import annotations

import logging
import os

import keras
import numpy as np

from seqtasks.classifier_export import (
    evaluate_classifier_export,
    export_classifier,
    predict_texts,
)
from seqtasks.classifier_training import (
    classifier_batches,
    plan_classifier_finetune,
    validation_metrics,
)
from seqtasks.data.classification import TextClassificationData, load_text_classification
from seqtasks.data.pipeline import split_indices
from seqtasks.embeddings import classifier_embeddings
from seqtasks.errors import ConfigError, DataError
from seqtasks.fine_tuning_schedule import LayerwiseAdam, SlantedTriangular, variable_groups
from seqtasks.lm_transfer import LanguageModelVectorizer, load_language_model
from seqtasks.losses import training_steps
from seqtasks.metrics import format_multilabel_report, format_report
from seqtasks.models.classifier import build_text_classifier, set_token_embeddings
from seqtasks.models.lm_classifier import classifier_from_language_model
from seqtasks.recipe import FinetunePlan, Prepared, Recipe, explicit_fields, jit_compile
from seqtasks.text import (
    RESERVED_TOKENS,
    WordVectorizer,
    build_vocabulary,
    write_vocabulary,
)
from tasks.registry import ENTRIES
from tasks.sentiment_config import SentimentConfig, model_mismatch

_ENTRY = ENTRIES["sentiment"]
log = logging.getLogger(__name__)

OOV_WARNING = 0.2  # finetune warns when more of the new data's tokens are out of vocabulary


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

    # What the CLI shows before TensorFlow is imported: one copy, in tasks/registry.py.
    name = _ENTRY.name
    task_type = _ENTRY.task_type
    description = _ENTRY.description
    models = _ENTRY.models
    extra_commands = _ENTRY.extra_commands
    config_class = SentimentConfig
    evaluate_options = _ENTRY.evaluate_options

    # --- data ----------------------------------------------------------------------------

    def load_data(self, config: SentimentConfig) -> TextClassificationData:
        if not config.data:
            raise ConfigError(_ENTRY.no_data)
        return load_text_classification(
            config.data,
            format=config.format,
            text_column=config.text_column,
            label_column=config.label_column,
            max_examples=config.max_examples,
            on_bad_rows=config.on_bad_rows,
            multi_label=config.multi_label,
            label_separator=config.label_separator,
            group_column=config.group_column,
        )

    def prepare(
        self, config: SentimentConfig, data: TextClassificationData, run_dir: str
    ) -> Prepared:
        labels = data.label_set()
        train_idx, val_idx = validation_carve(data, config)
        if config.init_from:
            return self._prepare_from_language_model(config, data, labels, (train_idx, val_idx))
        train_texts = [data.texts[i] for i in train_idx]

        vocabulary = build_vocabulary(train_texts, config.vocabulary_size, config.min_frequency)
        if len(vocabulary) == len(RESERVED_TOKENS):
            raise DataError(
                f"{config.data}: no word occurs {config.min_frequency} times in the training "
                f"split; lower min_frequency (--set min_frequency=1)"
            )
        vocabulary_file = write_vocabulary(vocabulary, os.path.join(run_dir, "vocabulary.txt"))
        vectorizer = WordVectorizer(vocabulary_file, config.sequence_length)
        prepared = _batches(config, data, labels, vectorizer, (train_idx, val_idx))
        if config.init_embeddings:
            matrix, facts = classifier_embeddings(
                config, vocabulary, train_texts, [data.texts[i] for i in val_idx], run_dir
            )
            prepared.info.embeddings = matrix
            prepared.metadata["init_embeddings"] = facts
        return prepared

    def carve(self, config: SentimentConfig, data: TextClassificationData):
        """``(train_idx, val_idx)`` of :func:`validation_carve` (``cli.py carve``)."""
        return validation_carve(data, config)

    def _prepare_from_language_model(self, config, data, labels, split) -> Prepared:
        """``prepare`` with ``init_from``: the language model's tokenizer (``[START]`` first)
        and vocabulary, copied into the run directory; the model is kept for ``build_model``.
        """
        pretrained = load_language_model(config.init_from)
        if "model" in explicit_fields(config) and config.model != pretrained.kind:
            raise model_mismatch(config.model, pretrained.source["path"], pretrained.kind)
        vectorizer = LanguageModelVectorizer(pretrained.tokenizer, config.sequence_length)
        prepared = _batches(config, data, labels, vectorizer, split)
        prepared.info.language_model = pretrained
        prepared.metadata["init_from"] = pretrained.source
        prepared.metadata["vocabulary_size"] = vectorizer.vocabulary_size
        return prepared

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
        a multi-label model) for the data's labels over the old encoder. The
        share of the data's tokens missing from the vocabulary is logged (a
        warning above ``OOV_WARNING``) and recorded in the plan's metadata
        (:func:`~seqtasks.classifier_training.plan_classifier_finetune`).

        Raises:
            ExportError: if the export lacks its Keras model or vocabulary.
            DataError: for labels the model does not know without ``new_head``.
        """
        return plan_classifier_finetune(
            data,
            version_dir,
            metadata,
            lambda labels, vectorizer: _batches(config, data, labels, vectorizer),
            where=config.data,
            sequence_length=config.sequence_length,
            multi_label=config.multi_label,
            new_head=new_head,
            freeze=freeze,
            oov_warning=OOV_WARNING,
        )

    # --- model ---------------------------------------------------------------------------

    def build_model(self, config: SentimentConfig, prepared: Prepared) -> keras.Model:
        """:func:`~seqtasks.models.classifier.build_text_classifier` with the config's
        settings; its embedding layer starts from ``prepared.info.embeddings`` when set.
        With ``init_from``: :func:`~seqtasks.models.lm_classifier.
        classifier_from_language_model` over the language model's layers."""
        pretrained = getattr(prepared.info, "language_model", None)
        if pretrained is not None:
            return classifier_from_language_model(
                pretrained.model,
                num_classes=len(prepared.info.labels),
                pooling=config.pooling,
                dropout=config.dropout,
                multi_label=config.multi_label,
            )
        model = build_text_classifier(
            num_classes=len(prepared.info.labels),
            vocabulary_size=prepared.info.vectorizer.vocabulary_size,
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
            residual_blocks=config.residual_blocks,
            conv_kernel_size=config.conv_kernel_size,
        )
        if getattr(prepared.info, "embeddings", None) is not None:
            set_token_embeddings(model, prepared.info.embeddings)
        return model

    def uses_schedule(self, config: SentimentConfig) -> bool:
        return config.lr_schedule != "constant"

    def compile_model(self, model, config: SentimentConfig, prepared: Prepared | None = None):
        """The base's Adam; with ``layer_lr_decay`` > 1, ``lr_schedule=slanted_triangular``
        or ``gradual_unfreezing``, :class:`~seqtasks.fine_tuning_schedule.LayerwiseAdam`
        over the model's layer groups, an epoch being ``ceil(train_examples / batch_size)``
        steps (a lower bound with length buckets)."""
        if (
            config.layer_lr_decay == 1.0
            and config.lr_schedule == "constant"
            and not config.gradual_unfreezing
        ):
            return super().compile_model(model, config, prepared)
        examples = ((prepared.metadata if prepared else {}).get("data") or {}).get(
            "train_examples"
        )
        if not examples:
            raise ConfigError(
                "lr_schedule/gradual_unfreezing need the run's training examples to count steps"
            )
        epoch_steps = training_steps(examples, config.batch_size, 1)
        learning_rate = config.learning_rate
        if config.lr_schedule == "slanted_triangular":
            learning_rate = SlantedTriangular(config.learning_rate, epoch_steps * config.epochs)
        groups, num_groups = variable_groups(model)
        optimizer = LayerwiseAdam(
            groups,
            num_groups,
            layer_lr_decay=config.layer_lr_decay,
            unfreeze_steps=epoch_steps if config.gradual_unfreezing else 0,
            learning_rate=learning_rate,
            clipnorm=config.clipnorm or None,
        )
        loss, metrics = self.loss_and_metrics(config)
        model.compile(
            optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile(config)
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
        at ``prepared.info.threshold``.
        """
        return validation_metrics(model, prepared)

    # --- export --------------------------------------------------------------------------

    def export(self, model, prepared: Prepared, config: SentimentConfig, metadata: dict) -> str:
        return export_classifier(
            model,
            prepared.info.vectorizer,
            prepared.info.labels,
            config.export_dir,
            describe={
                "task": self.name,
                "task_type": self.task_type,
                "model": prepared.metadata.get("init_from", {}).get("kind", config.model),
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


def validation_carve(
    data: TextClassificationData, config: SentimentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: the config's validation split of ``data``, carved by group
    when the data has groups and ``config.grouped_validation`` (see
    :func:`~seqtasks.data.pipeline.split_indices`); the carve is logged."""
    groups = data.groups if config.grouped_validation else None
    train_idx, val_idx = split_indices(
        len(data), config.validation_split, config.seed, groups=groups
    )
    if groups is not None and len(set(groups)) >= 2:
        held = {groups[i] for i in val_idx}
        log.info(
            "validation: %d examples of %d held-out groups (of %d); no group is in both splits",
            len(val_idx),
            len(held),
            len(set(groups)),
        )
    elif len(val_idx):
        log.info("validation: %d examples carved at random (no groups)", len(val_idx))
    return train_idx, val_idx


def _batches(config, data, labels, vectorizer, split=None) -> Prepared:
    """:func:`~seqtasks.classifier_training.classifier_batches` with the config's batch
    size, seed and threshold; ``split``: ``(train_idx, val_idx)``, by default the
    config's validation split."""
    train_idx, val_idx = split or validation_carve(data, config)
    return classifier_batches(
        data,
        labels,
        vectorizer,
        train_idx,
        val_idx,
        batch_size=config.batch_size,
        seed=config.seed,
        threshold=config.threshold,
    )
