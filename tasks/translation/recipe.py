"""The training side of the translation recipe: data, vocabularies, fine-tuning, model,
validation metrics and export (the serving side is :mod:`tasks.translation.serving`)."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import keras
import numpy as np

from seqtasks.data.parallel import ParallelData, load_parallel
from seqtasks.data.pipeline import split_indices
from seqtasks.data.teacher_forcing import pair_batches
from seqtasks.diagnostics import empty_outputs, low_bleu, warn_if_undertrained
from seqtasks.errors import ConfigError, DataError, UserError
from seqtasks.export import extra_files
from seqtasks.inference import load_keras_model
from seqtasks.metrics import bleu_chrf
from seqtasks.models.seq2seq import build_seq2seq
from seqtasks.models.seq2seq import freeze as freeze_layers
from seqtasks.recipe import FinetunePlan, Prepared
from seqtasks.subword import (
    SubwordTokenizer,
    learned_tokenizer,
    report_coverage,
    subword_coverage,
)
from tasks.registry import ENTRIES
from tasks.translation.config import TranslationConfig, TranslationInfo
from tasks.translation.serving import VOCABULARY_FILES, TranslationServing, make_translator

_ENTRY = ENTRIES["translation"]

log = logging.getLogger("tasks.translation")

# Fine-tuning a Transformer: linear warm-up over at most this many optimizer steps (the
# model is trained already; a long warm-up would spend a short fine-tuning run at tiny rates).
FINETUNE_WARMUP_STEPS = 100


class TranslationRecipe(TranslationServing):
    """Many-to-many encoder-decoder translation on the recipe contract of :mod:`seqtasks.recipe`.

    Batches follow the seq2seq layout ``({"encoder_token_ids": src,
    "decoder_token_ids": tgt[:, :-1]}, tgt[:, 1:])`` (teacher forcing), int32,
    right-padded with 0. Export: ``text`` (tf.string ``[None]``) in,
    ``translation`` (tf.string ``[None]``) and ``score`` (float32 ``[None]``,
    length-normalised log-probability) out; a second signature ``score``
    returns per-pair target log-likelihoods for perplexity.
    """

    # What the CLI shows before TensorFlow is imported: one copy, in tasks/registry.py.
    name = _ENTRY.name
    task_type = _ENTRY.task_type
    description = _ENTRY.description
    models = _ENTRY.models
    extra_commands = _ENTRY.extra_commands
    config_class = TranslationConfig

    # --- data ----------------------------------------------------------------------------

    def load_data(self, config: TranslationConfig) -> ParallelData:
        if not config.data and not config.source_file:
            raise ConfigError(_ENTRY.no_data)
        return load_parallel(
            config.data or None,
            source_lang=config.source_lang,
            target_lang=config.target_lang,
            split=config.split,
            source_file=config.source_file,
            target_file=config.target_file,
            reverse=config.reverse,
            max_examples=config.max_examples,
            format=config.format,
            source_column=config.source_column,
            target_column=config.target_column,
            on_bad_rows=config.on_bad_rows,
        )

    def prepare(self, config: TranslationConfig, data: ParallelData, run_dir: str) -> Prepared:
        if config.validation_data:
            if not config.data or not (
                config.data.startswith("tfds:") or os.path.isdir(config.data)
            ):
                raise ConfigError(
                    "config field 'validation_data' names a split, so --data must be a folder "
                    f"of <split>.<lang> files or tfds:<name>; received: {config.data or config.source_file!r}"
                )
            val = load_parallel(
                config.data,
                source_lang=config.source_lang,
                target_lang=config.target_lang,
                split=config.validation_data,
                reverse=config.reverse,
                on_bad_rows=config.on_bad_rows,
            )
            train = data
        else:
            train_idx, val_idx = split_indices(len(data), config.validation_split, config.seed)
            train, val = data.subset(train_idx), data.subset(val_idx)

        start = time.perf_counter()
        reused = any(name.startswith("vocabulary.") for name in os.listdir(run_dir))
        tokenizers = self._learn_tokenizers(config, train, run_dir)
        log.info(
            "%s vocabularies in %.1f s",
            "reused the" if reused else "learned",
            time.perf_counter() - start,
        )
        source_tokenizer, target_tokenizer = tokenizers
        train_ds, dropped = pair_batches(
            train, source_tokenizer, target_tokenizer, config, shuffle=True
        )
        if dropped == len(train):
            raise DataError(
                f"{config.data or config.source_file}: every training pair is longer than "
                f"sequence_length={config.sequence_length} tokens; raise it with --set sequence_length=N"
            )
        val_ds, val_dropped = pair_batches(
            val, source_tokenizer, target_tokenizer, config, shuffle=False
        )
        if dropped:
            log.warning(
                "dropped %d of %d training pairs longer than %d tokens",
                dropped,
                len(train),
                config.sequence_length,
            )
        log.info(
            "%d training / %d validation pairs; vocabularies: %d %s, %d %s tokens",
            len(train) - dropped,
            len(val),
            source_tokenizer.vocabulary_size,
            config.source_lang,
            target_tokenizer.vocabulary_size,
            config.target_lang,
        )
        return Prepared(
            train=train_ds,
            validation=val_ds,
            info=TranslationInfo(source_tokenizer, target_tokenizer, val),
            metadata={
                "source_lang": config.source_lang,
                "target_lang": config.target_lang,
                "data": {
                    "examples": len(data),
                    "train_examples": len(train) - dropped,
                    "validation_examples": len(val),
                    "skipped_empty": data.skipped_empty,
                    "dropped_too_long": dropped,
                    "validation_too_long": val_dropped,
                    **(
                        {"skipped_bad_rows": data.skipped_bad_rows}
                        if data.skipped_bad_rows is not None
                        else {}
                    ),
                    **(
                        {"validation_skipped_bad_rows": val.skipped_bad_rows}
                        if config.validation_data and val.skipped_bad_rows is not None
                        else {}
                    ),
                },
                "source_vocabulary_size": source_tokenizer.vocabulary_size,
                "target_vocabulary_size": target_tokenizer.vocabulary_size,
                # How the vocabularies cover the training split (finetune compares new data).
                "subwords": {
                    "source": subword_coverage(source_tokenizer, train.sources),
                    "target": subword_coverage(target_tokenizer, train.targets),
                },
            },
        )

    def _learn_tokenizers(self, config, train: ParallelData, run_dir: str):
        """WordPiece tokenizers for source and target (the same object when shared),
        written to ``run_dir`` as ``vocabulary.<lang>.txt`` (or ``vocabulary.shared.txt``)
        or reused from there (:func:`~seqtasks.subword.learned_tokenizer`)."""

        def tokenizer(name: str, texts: list[str]) -> SubwordTokenizer:
            return learned_tokenizer(
                os.path.join(run_dir, f"vocabulary.{name}.txt"),
                texts,
                config.vocabulary_size,
                config.sequence_length,
                lowercase=config.lowercase,
                min_frequency=config.min_frequency,
            )

        if config.shared_vocabulary:
            shared = tokenizer("shared", train.sources + train.targets)
            return shared, shared
        return (
            tokenizer(config.source_lang, train.sources),
            tokenizer(config.target_lang, train.targets),
        )

    # --- fine-tuning ---------------------------------------------------------------------

    def finetune_config(self, metadata: dict, **overrides) -> TranslationConfig:
        """The export's config with the new data; its language pair; a short Transformer warm-up.

        ``source_lang``/``target_lang`` default to the export's; another pair
        is an error. A Transformer's ``warmup_steps`` becomes at most
        :data:`FINETUNE_WARMUP_STEPS` (unless given): the fine-tuning learning
        rate (``finetune --learning-rate``, 1e-4 by default, a tenth of
        training's peak) is reached after a short linear warm-up and then
        decays with the inverse square root of the step, as in training.

        Raises:
            ConfigError: for a language pair other than the export's, or an invalid field.
        """
        pair = export_language_pair(metadata)
        if pair is not None:
            check_language_pair(
                pair, overrides.get("source_lang", pair[0]), overrides.get("target_lang", pair[1])
            )
            overrides = {"source_lang": pair[0], "target_lang": pair[1], **overrides}
        config = super().finetune_config(metadata, **overrides)
        if config.model == "transformer" and "warmup_steps" not in overrides:
            config = dataclasses.replace(
                config, warmup_steps=min(config.warmup_steps, FINETUNE_WARMUP_STEPS)
            )
        return config

    def plan_finetune(
        self,
        config: TranslationConfig,
        data: ParallelData,
        version_dir: str,
        metadata: dict,
        *,
        new_head: bool = False,
        freeze: str = "none",
    ) -> FinetunePlan:
        """Load the export's Keras model and WordPiece vocabularies; check the new pairs.

        The vocabularies are fixed (the model's embeddings are indexed by
        them): for each side the share of ``[UNK]`` tokens and the mean
        subword pieces per word are logged, next to the original training
        data's when the export recorded them (:func:`subword_coverage`), with
        a warning above :data:`UNK_WARNING` or :data:`PIECES_PER_WORD_WARNING`
        times the original pieces per word. ``freeze``: see
        :func:`seqtasks.models.seq2seq.freeze`.

        Raises:
            UserError: for ``new_head`` (a translation model has no labels).
            ConfigError: for a language pair other than the export's.
            ExportError: if the export lacks its Keras model or vocabularies.
        """
        if new_head:
            raise UserError(
                "--new-head: a translation model has no classification head (no labels); "
                "fine-tune without it"
            )
        pair = export_language_pair(metadata)
        if pair is not None:
            check_language_pair(pair, config.source_lang, config.target_lang)
        model_file, *vocabulary_files = extra_files(
            version_dir, ["model.keras", *VOCABULARY_FILES], "fine-tune"
        )
        tokenizers = [
            SubwordTokenizer(path, config.sequence_length, config.lowercase)
            for path in vocabulary_files
        ]
        original = metadata.get("subwords") if isinstance(metadata.get("subwords"), dict) else {}
        coverage = {}
        for side, tokenizer, texts, lang in (
            ("source", tokenizers[0], data.sources, config.source_lang),
            ("target", tokenizers[1], data.targets, config.target_lang),
        ):
            coverage[side] = subword_coverage(tokenizer, texts)
            known = (original.get(side) or {}).get("pieces_per_word")
            coverage[side]["training_pieces_per_word"] = known
            report_coverage(f"{side} ({lang})", coverage[side], known)
        model = load_keras_model(model_file)
        frozen = freeze_layers(model, freeze)
        if frozen:
            log.info("frozen (%s): %s", freeze, ", ".join(frozen))
        facts = {
            "finetuned_from": os.path.abspath(version_dir),
            "source_lang": config.source_lang,
            "target_lang": config.target_lang,
            "new_head": False,
            "freeze": freeze,
            "frozen_layers": frozen,
            "out_of_vocabulary": coverage,
        }

        # prepare() reuses vocabularies found in the run dir instead of learning new ones.
        names = (
            ["shared"] * 2 if config.shared_vocabulary else [config.source_lang, config.target_lang]
        )
        return self.finetune_plan(
            model,
            facts,
            lambda run_dir: self.prepare(config, data, run_dir),
            {path: f"vocabulary.{name}.txt" for name, path in zip(names, vocabulary_files)},
        )

    # --- model ---------------------------------------------------------------------------

    def build_model(self, config: TranslationConfig, prepared: Prepared) -> keras.Model:
        model = build_seq2seq(
            config,
            prepared.info.source_tokenizer.vocabulary_size,
            prepared.info.target_tokenizer.vocabulary_size,
        )
        # Build the weights with a dummy batch so summaries and checkpoints work before fit.
        dummy = np.ones((1, 2), np.int32)
        model({"encoder_token_ids": dummy, "decoder_token_ids": dummy})
        return model

    # --- metrics -------------------------------------------------------------------------

    def evaluate(self, model, prepared: Prepared, config: TranslationConfig) -> dict:
        """Validation metrics of the best weights.

        ``val_nll`` (mean negative log-likelihood per target token, nats, no label
        smoothing, unlike Keras' ``val_loss``), ``val_perplexity`` = exp of it and
        ``val_token_accuracy`` under teacher forcing; sacreBLEU ``val_bleu`` and
        ``val_chrf`` of the validation sources decoded with the configured strategy.
        Mostly empty translations or BLEU below 1 log an "undertrained" warning.
        """
        pairs = prepared.info.validation_pairs
        translator = self.translator(model, prepared, config)
        forced, decoding, hypotheses = self.generation_metrics(
            model, prepared.validation, translator, pairs.sources, config
        )
        scores = bleu_chrf(hypotheses, pairs.targets)
        warn_if_undertrained(
            log, empty_outputs(hypotheses, pairs.sources), low_bleu(scores["bleu"])
        )
        return {
            **forced,
            "val_bleu": scores["bleu"],
            "val_chrf": scores["chrf"],
            "bleu_signature": scores["bleu_signature"],
            "chrf_signature": scores["chrf_signature"],
            **decoding,
        }

    @staticmethod
    def translator(model, prepared: Prepared, config: TranslationConfig):
        """The run's translator: the one evaluation decoded with, which the export then saves
        without tracing its decoding again; a new one when it samples (the export starts
        its sampler's seed state afresh)."""
        if config.decoding == "sample":
            return make_translator(model, prepared.info, config)
        return prepared.reuse(
            "translator", model, lambda: make_translator(model, prepared.info, config)
        )

    # --- export --------------------------------------------------------------------------

    def export(self, model, prepared: Prepared, config: TranslationConfig, metadata: dict) -> str:
        """Raw source strings in (``text``), ``translation`` and ``score`` out; the ``score``
        signature gives target log-likelihoods (perplexity)."""
        return self.export_generator(
            self.translator(model, prepared, config),
            prepared,
            config,
            metadata,
            inputs={"text": "tf.string [None]: raw source sentences"},
            outputs={
                "translation": "tf.string [None]: detokenized translations",
                "score": "tf.float32 [None]: log P(translation|text) / its length in "
                "tokens ([END] included); 0 for empty input",
            },
            preprocessing={
                "tokenizer": "wordpiece",
                "sequence_length": config.sequence_length,
                "lowercase": config.lowercase,
                "shared_vocabulary": config.shared_vocabulary,
            },
            extra_files={
                "model.keras": model.save,
                VOCABULARY_FILES[0]: prepared.info.source_tokenizer.vocabulary_file,
                VOCABULARY_FILES[1]: prepared.info.target_tokenizer.vocabulary_file,
            },
        )


def export_language_pair(metadata: dict) -> tuple[str, str] | None:
    """``(source_lang, target_lang)`` of a translation export, or None if it has none."""
    source, target = metadata.get("source_lang"), metadata.get("target_lang")
    if isinstance(source, str) and isinstance(target, str):
        return source, target
    return None


def check_language_pair(pair: tuple[str, str], source_lang: str, target_lang: str) -> None:
    """Raise :class:`ConfigError` unless ``source_lang``-``target_lang`` is the export's ``pair``."""
    if (source_lang, target_lang) != tuple(pair):
        raise ConfigError(
            f"config fields 'source_lang' and 'target_lang': the model translates {pair[0]} to "
            f"{pair[1]}; received: {source_lang} to {target_lang} (fine-tuning keeps the "
            "model's language pair; train a new model for another)"
        )
