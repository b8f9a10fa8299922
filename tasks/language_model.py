"""The language-model recipe: next-token prediction, perplexity, and generation in the export.

Training reads text (:func:`seqtasks.data.text_corpus.load_corpus`), learns a
tokenizer (:mod:`seqtasks.lm_tokenizers`), cuts the token ids into windows
(:mod:`seqtasks.data.lm_pipeline`: a stream's contiguous tail, or a seeded share of
the documents, is held out) and trains a decoder-only model
(:mod:`seqtasks.models.language_models`) with the mean negative log-likelihood of the
true next tokens (Mikolov et al. 2010; Zaremba et al. 2014). The export is a
:class:`~seqtasks.lm_generation.LanguageModelGenerator`: ``serving_default`` (prompt ->
generated text), ``generate`` (per-row decoding settings) and ``score`` (text ->
log-likelihood, perplexity).
"""

from __future__ import annotations

import dataclasses
import logging
import os

import keras
import numpy as np

from seqtasks.data.lm_pipeline import (
    count_units,
    lm_batches,
    lm_windows,
    stream_ids,
    tokenize_texts,
)
from seqtasks.data.pipeline import split_indices
from seqtasks.data.text_corpus import TextCorpus, load_corpus, without_texts
from seqtasks.decoding import options_from_config
from seqtasks.errors import ConfigError, DataError, UserError
from seqtasks.export import extra_files
from seqtasks.inference import load_keras_model
from seqtasks.lm_generation import PROMPT_SPEC, LanguageModelGenerator
from seqtasks.lm_serving import LanguageModelServing, lm_report
from seqtasks.lm_tokenizers import learn_tokenizer, load_tokenizer
from seqtasks.metrics import teacher_forced_metrics
from seqtasks.models.language_models import RNNLanguageModel, TransformerLanguageModel
from seqtasks.recipe import FinetunePlan, Prepared
from tasks.language_model_config import LanguageModelConfig
from tasks.registry import ENTRIES

_ENTRY = ENTRIES["language-model"]

log = logging.getLogger("tasks.language_model")

VOCABULARY_FILE = "vocabulary.txt"

# The export's other signatures, described in its metadata.
SIGNATURES = {
    "generate": "prompt (tf.string [None]), max_length (int32 [None]: new tokens at most), "
    "temperature (float32 [None], > 0), top_k (int32 [None], 0 = all), top_p (float32 "
    "[None], 1 = all), seed (int64 [None]) -> text (tf.string [None]), score (float32 "
    "[None]), tokens (int32 [None]), token_log_probs (float32 [None, None]); settings "
    "row by row, stateless seeded sampling",
    "score": "text (tf.string [None]) -> log_likelihood (float32 [None], summed over the "
    "text's tokens, [END] included in documents mode), tokens (int32 [None]), perplexity "
    "(float32 [None]); any length (an RNN carries its state; a Transformer reads windows)",
}


@dataclasses.dataclass
class LanguageModelInfo:
    """What :meth:`LanguageModelRecipe.prepare` hands to the later steps.

    Attributes:
        tokenizer: the learned tokenizer (:mod:`seqtasks.lm_tokenizers`).
        mode: ``"stream"`` or ``"documents"``.
        validation_units: ``{"characters", "words"}`` of the validation text.
    """

    tokenizer: object
    mode: str
    validation_units: dict


class LanguageModelRecipe(LanguageModelServing):
    """Decoder-only language model on the recipe contract of :mod:`seqtasks.recipe`.

    Batches: ``({"decoder_token_ids": int32 (B, L)}, int32 (B, L))``, the target the
    input shifted by one token, right-padded with ``[PAD]`` = 0 (never counted).
    """

    name = _ENTRY.name
    task_type = _ENTRY.task_type
    description = _ENTRY.description
    models = _ENTRY.models
    extra_commands = _ENTRY.extra_commands
    evaluate_options = _ENTRY.evaluate_options
    config_class = LanguageModelConfig

    # --- data ----------------------------------------------------------------------------

    def load_data(self, config: LanguageModelConfig) -> TextCorpus:
        """The corpus of ``config.data``, without the documents equal to a text of
        ``config.exclude_texts`` (logged; recorded as ``excluded`` in the metadata).

        Raises:
            ConfigError: ``exclude_texts`` with a stream (one text cannot lose documents).
            DataError: as :func:`~seqtasks.data.text_corpus.load_corpus`.
        """
        corpus = self._corpus(config, config.data)
        if not config.exclude_texts:
            return corpus
        if config.resolved_mode() == "stream":
            raise ConfigError(
                "config field 'exclude_texts': needs documents (--set mode=documents); "
                f"{config.data} is read as one stream"
            )
        held_out = load_corpus(config.exclude_texts, mode="documents").texts
        corpus, removed = without_texts(corpus, held_out)
        log.info(
            "exclude_texts %s: %d texts; %d documents of the data equal one and are left out",
            config.exclude_texts,
            len(held_out),
            removed,
        )
        corpus.excluded = {
            "path": config.exclude_texts,
            "texts": len(held_out),
            "documents_left_out": removed,
        }
        return corpus

    def count_examples(self, corpus: TextCorpus) -> int:
        """Documents, or the characters of a stream (its validation tail is cut by characters)."""
        if len(corpus) == 1:
            return len(corpus.texts[0])
        return len(corpus)

    @staticmethod
    def _corpus(config: LanguageModelConfig, path: str) -> TextCorpus:
        return load_corpus(
            path,
            mode=config.resolved_mode(),
            format=None if config.format == "auto" else config.format,
            text_column=config.text_column,
            split=config.split,
            on_bad_rows=config.on_bad_rows,
        )

    def prepare(self, config: LanguageModelConfig, corpus: TextCorpus, run_dir: str) -> Prepared:
        mode = config.resolved_mode()
        train_texts, val_texts = self._split(config, corpus, mode)
        try:
            tokenizer = learn_tokenizer(
                config.tokenizer,
                os.path.join(run_dir, VOCABULARY_FILE),
                train_texts,
                vocabulary_size=config.vocabulary_size,
                lowercase=config.lowercase,
                min_frequency=config.min_frequency,
                char_unit=config.char_unit,
            )
        except ValueError as e:
            raise DataError(f"{config.data}: {e}") from None
        length = config.sequence_length
        if mode == "stream":
            train_ids, val_ids = (
                stream_ids(tokenizer, train_texts[0]),
                stream_ids(tokenizer, val_texts[0]),
            )
        else:
            train_ids, val_ids = (
                tokenize_texts(tokenizer, train_texts),
                tokenize_texts(tokenizer, val_texts),
            )
        try:
            train_x, train_y = lm_windows(train_ids, mode, length)
            val_x, val_y = lm_windows(val_ids, mode, length, validation=True)
        except ValueError as e:
            raise DataError(
                f"{config.data}: {e}; lower sequence_length or give more text"
            ) from None
        if config.max_examples:
            train_x, train_y = train_x[: config.max_examples], train_y[: config.max_examples]
        if not len(val_x):
            raise DataError(f"{config.data}: no validation text; raise validation_split")
        unknown = float(np.mean(np.concatenate([train_x.ravel(), [0]]) == 1))
        log.info(
            "%s mode: %d training / %d validation windows of %d %s tokens; vocabulary %d%s",
            mode,
            len(train_x),
            len(val_x),
            length,
            config.tokenizer,
            tokenizer.vocabulary_size,
            f"; {unknown:.2%} [UNK]" if unknown else "",
        )
        return Prepared(
            train=lm_batches(
                train_x,
                train_y,
                config.batch_size,
                shuffle=True,
                seed=config.seed,
                with_targets=bool(config.sampled_softmax),
            ),
            validation=lm_batches(val_x, val_y, config.batch_size, shuffle=False),
            info=LanguageModelInfo(tokenizer, mode, count_units(val_texts)),
            metadata={
                "mode": mode,
                "vocabulary_size": tokenizer.vocabulary_size,
                "data": {
                    "documents": len(corpus),
                    "train_examples": len(train_x),
                    "validation_examples": len(val_x),
                    "train_tokens": int((train_y != 0).sum()),
                    "validation_tokens": int((val_y != 0).sum()),
                    "skipped_empty": corpus.skipped_empty,
                    **({"excluded": corpus.excluded} if corpus.excluded else {}),
                    **(
                        {"skipped_bad_rows": corpus.skipped_bad_rows}
                        if corpus.skipped_bad_rows is not None
                        else {}
                    ),
                },
            },
        )

    def _split(self, config, corpus: TextCorpus, mode: str) -> tuple[list[str], list[str]]:
        """Training and validation texts: ``validation_data``'s, a stream's contiguous tail
        (cut after a newline where one is near), or a seeded share of the documents."""
        if config.validation_data:
            validation = self._corpus(config, config.validation_data)
            if mode == "stream":
                return [corpus.stream_text()], [validation.stream_text()]
            return corpus.texts, validation.texts
        if mode == "stream":
            text = corpus.stream_text()
            cut = len(text) - int(round(len(text) * config.validation_split))
            return [text[:cut]], [text[cut:]]
        if len(corpus) < 2:
            raise DataError(
                f"{config.data}: one document cannot be split for validation; pass "
                "--set validation_data=FILE or --set mode=stream"
            )
        train_idx, val_idx = split_indices(len(corpus), config.validation_split, config.seed)
        return [corpus.texts[i] for i in train_idx], [corpus.texts[i] for i in val_idx]

    # --- model ---------------------------------------------------------------------------

    def build_model(self, config: LanguageModelConfig, prepared: Prepared) -> keras.Model:
        vocabulary = prepared.info.tokenizer.vocabulary_size
        if config.sampled_softmax >= vocabulary - 1:
            raise ConfigError(
                "config field 'sampled_softmax': expected fewer classes than the learned "
                f"vocabulary ({vocabulary} tokens) minus one; received: {config.sampled_softmax}"
            )
        if config.model == "transformer":
            model = TransformerLanguageModel(
                vocabulary,
                config.sequence_length,
                hidden_dim=config.resolved("hidden_dim"),
                intermediate_dim=config.resolved("intermediate_dim"),
                num_heads=config.num_heads,
                num_layers=config.resolved("num_layers"),
                dropout=config.dropout,
                tie_embeddings=config.tie_embeddings,
                num_sampled=config.sampled_softmax,
            )
        else:
            model = RNNLanguageModel(
                vocabulary,
                embedding_dim=config.resolved("embedding_dim"),
                hidden_dim=config.resolved("hidden_dim"),
                num_layers=config.resolved("num_layers"),
                cell=config.model,
                dropout=config.dropout,
                tie_embeddings=config.tie_embeddings,
                residual_blocks=config.residual_blocks,
                num_sampled=config.sampled_softmax,
                conv_kernel_size=config.conv_kernel_size,
            )
        model({"decoder_token_ids": np.ones((1, 2), np.int32)})  # build the weights
        return model

    def loss_and_metrics(self, config: LanguageModelConfig):
        """Masked cross-entropy and token accuracy; with ``sampled_softmax`` both also read
        the sampled logits of training steps (validation stays full-softmax)."""
        from seqtasks.losses import MaskedCrossEntropy, token_accuracy

        return (
            MaskedCrossEntropy(config.label_smoothing, num_sampled=config.sampled_softmax),
            [token_accuracy(config.sampled_softmax)],
        )

    # --- metrics -------------------------------------------------------------------------

    def evaluate(self, model, prepared: Prepared, config: LanguageModelConfig) -> dict:
        """``val_nll`` (nats per token, padding never counted), ``val_perplexity`` and the NLL
        per character and per word of the validation text (``val_bits_per_character``
        for the char tokenizer), plus three samples generated from ``[START]``."""
        forced = teacher_forced_metrics(model, prepared.validation)
        report = lm_report(
            forced["nll"] * forced["tokens"],
            forced["tokens"],
            prepared.info.validation_units,
            config.tokenizer,
            prefix="val_",
        )
        samples = self.samples(self.run_generator(model, prepared, config), config)
        for sample in samples:
            log.info("sample: %r", sample[:200])
        return {**report, "val_token_accuracy": forced["token_accuracy"], "samples": samples}

    @staticmethod
    def samples(generator: LanguageModelGenerator, config, count: int = 3) -> list[str]:
        """``count`` texts sampled from ``[START]`` with the config's temperature and top-p,
        seeds ``0 .. count - 1`` (shown after training, kept in the metrics)."""
        import tensorflow as tf

        out = generator.generate_function(
            tf.constant([""] * count),
            tf.constant([config.max_length] * count),
            tf.constant([config.temperature] * count),
            tf.constant([config.top_k] * count),
            tf.constant([config.top_p] * count),
            tf.range(count, dtype=tf.int64),
        )
        return [text.decode("utf-8") for text in out["text"].numpy()]

    def run_generator(self, model, prepared: Prepared, config) -> LanguageModelGenerator:
        """The run's generator: the one evaluation sampled with, which the export then saves
        without tracing ``generate`` again (its sampling is stateless: seeds are inputs)."""
        return prepared.reuse(
            "generator", model, lambda: self.generator(model, prepared.info.tokenizer, config)
        )

    @staticmethod
    def generator(model, tokenizer, config) -> LanguageModelGenerator:
        return LanguageModelGenerator(
            model,
            tokenizer,
            options_from_config(config),
            max_length=config.max_length,
            sequence_length=config.sequence_length,
            mode=config.resolved_mode(),
            no_repeat_ngram_size=config.no_repeat_ngram_size,
        )

    # --- export --------------------------------------------------------------------------

    def export(self, model, prepared: Prepared, config: LanguageModelConfig, metadata: dict) -> str:
        generator = self.run_generator(model, prepared, config)
        return self.export_generator(
            generator,
            prepared,
            config,
            metadata,
            inputs={"prompt": "tf.string [None]: text to continue ('' starts from [START])"},
            outputs={
                "text": "tf.string [None]: the generated continuation (without the prompt)",
                "score": "tf.float32 [None]: mean log-probability per generated token",
            },
            preprocessing={
                "tokenizer": config.tokenizer,
                "char_unit": config.char_unit,
                "lowercase": config.lowercase,
                "sequence_length": config.sequence_length,
                "mode": prepared.info.mode,
                "context_limit": generator.context_limit,
                "prompt_limit": generator.prompt_limit,
                "max_length": config.max_length,
                "no_repeat_ngram_size": config.no_repeat_ngram_size,
            },
            extra_files={
                "model.keras": model.save,
                VOCABULARY_FILE: prepared.info.tokenizer.vocabulary_file,
            },
            endpoints={
                name: (fn, signature, SIGNATURES[name])
                for name, (fn, signature) in generator.signatures().items()
            },
            spec=PROMPT_SPEC,
        )

    # --- fine-tuning ---------------------------------------------------------------------

    def plan_finetune(
        self,
        config,
        corpus: TextCorpus,
        version_dir: str,
        metadata: dict,
        *,
        new_head=False,
        freeze="none",
    ) -> FinetunePlan:
        """Load the export's model and vocabulary (kept: the embeddings are indexed by it) and
        report how the new text is covered (``[UNK]`` share, tokens per word).

        Raises:
            UserError: for ``new_head`` (a language model has no labels) or ``freeze``.
            ExportError: if the export lacks its Keras model or vocabulary.
        """
        if new_head or freeze != "none":
            raise UserError(
                "--new-head/--freeze: a language model is fine-tuned whole; run without them"
            )
        model_file, vocabulary_file = extra_files(
            version_dir, ["model.keras", VOCABULARY_FILE], "fine-tune"
        )
        tokenizer = load_tokenizer(
            config.tokenizer,
            vocabulary_file,
            lowercase=config.lowercase,
            char_unit=config.char_unit,
        )
        sample = corpus.texts[:2000]
        ids = np.concatenate(tokenize_texts(tokenizer, sample) + [np.zeros(0, np.int32)])
        words = max(count_units(sample)["words"], 1)
        coverage = {
            "unknown_share": float(np.mean(ids == 1)) if len(ids) else 0.0,
            "tokens_per_word": len(ids) / words,
        }
        log.info(
            "new text: %.2f%% [UNK] tokens, %.2f tokens per word (first %d texts)",
            100 * coverage["unknown_share"],
            coverage["tokens_per_word"],
            len(sample),
        )
        if coverage["unknown_share"] > 0.05:
            log.warning(
                "%.1f%% of the new text's tokens are [UNK]: the model's vocabulary does not "
                "cover it; train a new model on it instead",
                100 * coverage["unknown_share"],
            )
        facts = {
            "finetuned_from": os.path.abspath(version_dir),
            "new_head": False,
            "freeze": freeze,
            "out_of_vocabulary": coverage,
        }
        return self.finetune_plan(
            load_keras_model(model_file),
            facts,
            lambda run_dir: self.prepare(config, corpus, run_dir),
            {vocabulary_file: VOCABULARY_FILE},
        )
