"""The serving side of the translation recipe: predict, evaluate and plot an export.

These steps work on an exported version (its SavedModel, or its Keras model and
vocabularies for plots), never on the training run's objects; the generator
helpers build the :class:`~seqtasks.generation.Generator` that both the export and
the plots decode with.
"""

from __future__ import annotations

import logging

import tensorflow as tf

from seqtasks.data.parallel import load_parallel
from seqtasks.decoding import options_from_config, stored_options
from seqtasks.diagnostics import empty_outputs, low_bleu, warn_if_undertrained
from seqtasks.errors import UserError
from seqtasks.export import extra_files
from seqtasks.generation import Generator, TextSource
from seqtasks.generation_recipe import GenerationRecipe, decoding_line, export_perplexity
from seqtasks.inference import load_keras_model
from seqtasks.metrics import bleu_chrf
from seqtasks.subword import SubwordTokenizer
from tasks.registry import ENTRIES
from tasks.translation.config import TranslationConfig, TranslationInfo

_ENTRY = ENTRIES["translation"]

log = logging.getLogger("tasks.translation")

# Copies of the WordPiece vocabularies in an export's assets.extra/ (plots, fine-tuning).
VOCABULARY_FILES = ("source_vocabulary.txt", "target_vocabulary.txt")


class TranslationServing(GenerationRecipe):
    """The serving-side steps of :class:`~tasks.translation.recipe.TranslationRecipe`."""

    output_name = "translation"
    evaluate_options = _ENTRY.evaluate_options

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
        ``on_bad_rows="skip"`` the report has ``skipped_bad_rows``. Mostly empty
        translations or BLEU below 1 log an "undertrained" warning.
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
        warn_if_undertrained(
            log, empty_outputs(hypotheses, pairs.sources), low_bleu(report["bleu"])
        )
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
        """``translation<TAB>text``: the answer next to the sentence it translates (as
        captioning's ``caption<TAB>image``)."""
        return f"{result['translation']}\t{result['text']}"

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
