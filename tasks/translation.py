"""Machine translation, the many-to-many recipe: a sentence in, its translation out.

Defaults train a small Transformer (3+3 blocks, d_model 256) on WordPiece
subwords learned from the training data, with label smoothing and a warm-up +
inverse-square-root learning-rate schedule; evaluation decodes with beam
search and scores with sacreBLEU. The export takes raw source strings and
returns translations: tokenization, beam search and detokenization all run
inside the SavedModel. Top to bottom: config, data, model, metrics, export,
serving side.

    python cli.py train translation --data ../shared/data/multi30k --source-lang en --target-lang de
    python cli.py predict saved_models/translation "A man is riding a bicycle down the street."
    python cli.py evaluate saved_models/translation --data ../shared/data/multi30k --split test_2016_flickr
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import keras
import numpy as np
import tensorflow as tf

from seqtasks.config import TrainConfig, option, retune
from seqtasks.config_groups import (
    RecordFields,
    RNNFields,
    ScheduleFields,
    SubwordFields,
    TransformerFields,
)
from seqtasks.data.parallel import ParallelData, load_parallel
from seqtasks.data.pipeline import split_indices
from seqtasks.data.teacher_forcing import pair_batches
from seqtasks.decoding import DecodingConfig, options_from_config, stored_options
from seqtasks.errors import ConfigError, DataError, UserError
from seqtasks.export import extra_files
from seqtasks.generation import Generator, TextSource
from seqtasks.generation_recipe import GenerationRecipe, decoding_line, export_perplexity
from seqtasks.inference import load_keras_model
from seqtasks.metrics import bleu_chrf
from seqtasks.models.seq2seq import SEQ2SEQ_MODELS, build_seq2seq
from seqtasks.models.seq2seq import freeze as freeze_layers
from seqtasks.recipe import FinetunePlan, Prepared
from seqtasks.subword import (
    SubwordTokenizer,
    learned_tokenizer,
    report_coverage,
    subword_coverage,
)

log = logging.getLogger(__name__)

# Copies of the WordPiece vocabularies in an export's assets.extra/ (plots, fine-tuning).
VOCABULARY_FILES = ("source_vocabulary.txt", "target_vocabulary.txt")

# Fine-tuning a Transformer: linear warm-up over at most this many optimizer steps (the
# model is trained already; a long warm-up would spend a short fine-tuning run at tiny rates).
FINETUNE_WARMUP_STEPS = 100


# --- config ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TranslationConfig(
    TransformerFields,
    RNNFields,
    SubwordFields,
    ScheduleFields,
    RecordFields,
    DecodingConfig,
    TrainConfig,
):
    """Defaults of the translation recipe (every field can be set with ``--set key=value``)."""

    model: str = option("transformer", "Encoder-decoder architecture.", choices=SEQ2SEQ_MODELS)
    epochs: int = option(20, "Maximum number of epochs (early stopping may end sooner).", min=1)
    batch_size: int = option(64, "Sentence pairs per training batch.", min=1)
    learning_rate: float = option(
        1e-3, "Adam learning rate (the Transformer's peak, reached after warmup_steps).", above=0.0
    )
    reduce_lr_factor: float = option(
        0.5,
        "RNN models: multiply the learning rate by this after an epoch without a better "
        "validation loss (1 = off). The Transformer uses its warm-up schedule instead.",
        min=0.01,
        max=1.0,
    )
    patience: int = option(
        3, "Early stopping: epochs without a better validation loss before stopping.", min=0
    )
    format: str = retune(
        RecordFields,
        "format",
        "auto",
        help="Data format of a file; auto uses the extension (a .tsv/.txt is records only if "
        "its first line names both columns, else a headerless pair file).",
    )
    on_bad_rows: str = retune(
        RecordFields,
        "on_bad_rows",
        "error",
        help="Malformed pairs (no tab, wrong number of fields, empty side, bad UTF-8, invalid "
        "JSON): error stops at the first; skip drops them with a warning (count, first line "
        "numbers) and records the count.",
    )
    vocabulary_size: int = retune(
        SubwordFields,
        "vocabulary_size",
        8000,
        help="Upper bound on WordPiece tokens per vocabulary (4 reserved included).",
    )
    sequence_length: int = retune(
        SubwordFields,
        "sequence_length",
        64,
        help="Longest source and target in subword tokens ([START]/[END] included); longer "
        "training pairs are dropped, longer inputs truncated at inference.",
    )
    hidden_dim: int = retune(
        TransformerFields,
        "hidden_dim",
        256,
        help="Transformer d_model; RNN units per encoder direction.",
    )
    # The language pair is the data's: fine-tuning puts the export's back (finetune_config).
    source_lang: str = option(
        "en", "Source language code (file suffix in a folder of splits).", data=True
    )
    target_lang: str = option("de", "Target language code.", data=True)
    source_file: str | None = option(
        None, "Explicit source file, one sentence per line.", data=True
    )
    target_file: str | None = option(
        None, "Explicit target file, aligned with source_file.", data=True
    )
    split: str = option(
        "train", "Training split of a folder of <split>.<lang> files, or TFDS.", data=True
    )
    validation_data: str | None = option(
        None,
        "Split of the same folder/TFDS dataset used for validation (e.g. val); "
        "None carves validation_split from the training data.",
        data=True,
    )
    reverse: bool = option(
        False, "Headerless pair files: column 2 is the source, column 1 the target.", data=True
    )
    source_column: str | None = option(
        None,
        "Source field of CSV/TSV/JSONL/Parquet data (default: source_lang if such a column "
        "exists, else source).",
        data=True,
    )
    target_column: str | None = option(
        None,
        "Target field of CSV/TSV/JSONL/Parquet data (default: target_lang if such a column "
        "exists, else target).",
        data=True,
    )
    shared_vocabulary: bool = option(
        False, "One WordPiece vocabulary for both languages instead of one each."
    )
    lowercase: bool = option(False, "Lower-case text before tokenization.")
    num_layers: int | None = option(
        None,
        "Transformer blocks per side (None: 3); rnn-attention bidirectional encoder layers "
        "(None: 1).",
        min=1,
    )

    def check(self) -> None:
        """The groups' checks; ``source_file`` and ``target_file`` go together."""
        super().check()
        if bool(self.source_file) != bool(self.target_file):
            raise ConfigError("--source-file and --target-file go together; received only one")


@dataclasses.dataclass
class TranslationInfo:
    """What :meth:`TranslationRecipe.prepare` hands to the later steps (``Prepared.info``).

    Attributes:
        source_tokenizer: the source :class:`~seqtasks.subword.SubwordTokenizer`.
        target_tokenizer: the target one (the same object with ``shared_vocabulary``).
        validation_pairs: the validation :class:`~seqtasks.data.parallel.ParallelData`.
    """

    source_tokenizer: SubwordTokenizer
    target_tokenizer: SubwordTokenizer
    validation_pairs: ParallelData


# --- recipe ------------------------------------------------------------------------------


class TranslationRecipe(GenerationRecipe):
    """Many-to-many encoder-decoder translation on the recipe contract of :mod:`seqtasks.recipe`.

    Batches follow the seq2seq layout ``({"encoder_token_ids": src,
    "decoder_token_ids": tgt[:, :-1]}, tgt[:, 1:])`` (teacher forcing), int32,
    right-padded with 0. Export: ``text`` (tf.string ``[None]``) in,
    ``translation`` (tf.string ``[None]``) and ``score`` (float32 ``[None]``,
    length-normalised log-probability) out; a second signature ``score``
    returns per-pair target log-likelihoods for perplexity.
    """

    name = "translation"
    task_type = "many-to-many"
    description = "Machine translation (encoder-decoder): a sentence in, its translation out."
    config_class = TranslationConfig
    extra_commands = frozenset({"plot-attention"})
    output_name = "translation"
    models = {
        "transformer": "keras-hub Transformer encoder-decoder (default)",
        "rnn-attention": "BiLSTM/BiGRU encoder, LSTM/GRU decoder with additive or "
        "multiplicative attention",
    }
    evaluate_options = frozenset(
        {
            "source_lang",
            "target_lang",
            "source_file",
            "target_file",
            "split",
            "max_examples",
            "format",
            "source_column",
            "target_column",
            "on_bad_rows",
        }
    )

    # --- data ----------------------------------------------------------------------------

    def load_data(self, config: TranslationConfig) -> ParallelData:
        if not config.data and not config.source_file:
            raise ConfigError(
                "no training data: pass --data PATH (a folder of <split>.<lang> files, a "
                "CSV/TSV/JSONL/Parquet file, a pair file or zip, or tfds:<name>) or "
                "--source-file and --target-file"
            )
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
        """
        pairs = prepared.info.validation_pairs
        translator = make_translator(model, prepared.info, config)
        forced, decoding, hypotheses = self.generation_metrics(
            model, prepared.validation, translator, pairs.sources, config
        )
        scores = bleu_chrf(hypotheses, pairs.targets)
        return {
            **forced,
            "val_bleu": scores["bleu"],
            "val_chrf": scores["chrf"],
            "bleu_signature": scores["bleu_signature"],
            "chrf_signature": scores["chrf_signature"],
            **decoding,
        }

    # --- export --------------------------------------------------------------------------

    def export(self, model, prepared: Prepared, config: TranslationConfig, metadata: dict) -> str:
        """Raw source strings in (``text``), ``translation`` and ``score`` out; the ``score``
        signature gives target log-likelihoods (perplexity)."""
        return self.export_generator(
            make_translator(model, prepared.info, config),
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

    # --- serving side --------------------------------------------------------------------

    def predict(self, version_dir: str, metadata: dict, inputs: list[str]) -> list[dict]:
        """Translations and scores of raw source sentences from the exported SavedModel."""
        texts, scores, _, _ = self.run_export(version_dir, "text", inputs, batch_size=64)
        return [
            {"text": text, "translation": translation, "score": score}
            for text, translation, score in zip(inputs, texts, scores)
        ]

    def evaluate_export(
        self,
        version_dir: str,
        metadata: dict,
        *,
        data: str | None = None,
        split: str = "test",
        source_lang: str | None = None,
        target_lang: str | None = None,
        source_file: str | None = None,
        target_file: str | None = None,
        reverse: bool | None = None,
        max_examples: int | None = None,
        format: str | None = None,
        source_column: str | None = None,
        target_column: str | None = None,
        on_bad_rows: str = "error",
    ) -> dict:
        """sacreBLEU BLEU and chrF of the export's translations of ``split``, and perplexity.

        Languages and ``reverse`` (pair files) default to those the model was trained with;
        ``format``, the columns and ``on_bad_rows`` are :func:`load_parallel`'s. With
        ``on_bad_rows="skip"`` the report has ``skipped_bad_rows``.
        """
        if reverse is None:
            reverse = bool((metadata.get("config") or {}).get("reverse", False))
        pairs = load_parallel(
            data,
            source_lang=source_lang or metadata.get("source_lang", ""),
            target_lang=target_lang or metadata.get("target_lang", ""),
            split=split,
            source_file=source_file,
            target_file=target_file,
            reverse=reverse,
            max_examples=max_examples,
            format=format,
            source_column=source_column,
            target_column=target_column,
            on_bad_rows=on_bad_rows,
        )
        hypotheses, _, seconds, loaded = self.run_export(
            version_dir, "text", pairs.sources, batch_size=64
        )
        report = bleu_chrf(hypotheses, pairs.targets)
        perplexity = export_perplexity(loaded, "text", pairs.sources, pairs.targets)
        if perplexity is not None:
            report["perplexity"] = perplexity
        report.update(
            {
                "data": pairs.source,
                "split": split,
                "decoding": metadata.get("decoding"),
                "sentences_per_second": round(len(pairs) / seconds, 2),
                "skipped_empty": pairs.skipped_empty,
            }
        )
        if pairs.skipped_bad_rows is not None:
            report["skipped_bad_rows"] = pairs.skipped_bad_rows
        return report

    def format_prediction(self, result: dict) -> str:
        return result["translation"]

    def plot_attention(self, version_dir: str, metadata: dict, sentence: str, output: str) -> dict:
        """Translate ``sentence`` with the export's Keras model and plot its cross-attention.

        Decodes as the export does (its stored decoding options), then draws
        the last decoder layer's attention weights: one row per generated
        token (``[END]`` included), one column per source subword.

        Returns:
            ``{"translation", "score", "source_tokens", "target_tokens", "output"}``.

        Raises:
            UserError: for an empty sentence; ExportError if the export lacks
            its Keras model or vocabularies.
        """
        from seqtasks.errors import UserError
        from seqtasks.plots import attention_heatmap

        if not sentence.strip():
            raise UserError("nothing to plot: the sentence is empty")
        translator = load_translator(version_dir, metadata)
        source, ids, scores, maps = translator.attention(tf.constant([sentence]))
        tokens, weights = maps[0]
        vocabulary = (translator.source.tokenizer.vocabulary, translator.tokenizer.vocabulary)
        source_tokens = [vocabulary[0][i] for i in source[0]]
        target_tokens = [vocabulary[1][i] for i in tokens]
        translation = translator.tokenizer.detokenize(ids[:1]).numpy()[0].decode("utf-8")
        attention_heatmap(
            weights,
            source_tokens,
            target_tokens,
            output,
            title=f"{sentence}\n→ {translation}",
        )
        return {
            "translation": translation,
            "score": float(scores[0]),
            "source_tokens": source_tokens,
            "target_tokens": target_tokens,
            "output": output,
        }

    def format_report(self, report: dict) -> str:
        lines = [
            f"split     {report['split']} ({report['segments']} sentences)",
            f"BLEU      {report['bleu']:.2f}   {report['bleu_signature']}",
            f"chrF      {report['chrf']:.2f}   {report['chrf_signature']}",
        ]
        if "perplexity" in report:
            lines.append(f"perplexity {report['perplexity']:.2f}")
        decoding = decoding_line(report, "sentences_per_second", "sentences")
        if decoding:
            lines.append(decoding)
        return "\n".join(lines)


# --- building blocks ---------------------------------------------------------------------


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


def text_generator(model, source_tokenizer, target_tokenizer, options, max_length: int):
    """A :class:`~seqtasks.generation.Generator` from source strings to translations
    (output ``translation``; an empty or whitespace-only source gives "" with score 0)."""
    return Generator(
        model,
        target_tokenizer,
        options,
        max_length,
        source=TextSource(source_tokenizer),
        output_name="translation",
    )


def make_translator(model, info: TranslationInfo, config: TranslationConfig) -> Generator:
    """The translation :class:`~seqtasks.generation.Generator` of a trained model,
    decoding as ``config`` says."""
    return text_generator(
        model,
        info.source_tokenizer,
        info.target_tokenizer,
        options_from_config(config),
        config.sequence_length,
    )


def load_translator(version_dir: str, metadata: dict) -> Generator:
    """The translation :class:`~seqtasks.generation.Generator` of an export's Keras model
    and vocabularies (``assets.extra/``), decoding with its stored options.

    Raises:
        ExportError: if the export lacks its Keras model or vocabularies, or the model
            cannot be loaded.
    """
    model_file, *vocabularies = extra_files(version_dir, ["model.keras", *VOCABULARY_FILES], "plot")
    preprocessing = metadata.get("preprocessing", {})
    length = int(preprocessing.get("sequence_length", 64))
    lowercase = bool(preprocessing.get("lowercase", False))
    source_tokenizer, target_tokenizer = (
        SubwordTokenizer(path, length, lowercase) for path in vocabularies
    )
    model = load_keras_model(model_file)
    options = stored_options(metadata.get("decoding"))
    return text_generator(model, source_tokenizer, target_tokenizer, options, length)
