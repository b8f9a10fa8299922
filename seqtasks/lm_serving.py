"""The serving side of language models: predict, generate and evaluate an export.

:class:`LanguageModelServing` works on an exported version (its SavedModel
signatures ``serving_default``, ``generate`` and ``score``; see
:class:`~seqtasks.lm_generation.LanguageModelGenerator`), never on the training run's
objects. :func:`lm_report` turns a total negative log-likelihood into the metrics every
language-model report carries, so validation during training and ``evaluate`` on an
export give the same figures for the same text.
"""

from __future__ import annotations

import logging
import math
import time

from seqtasks.errors import UserError
from seqtasks.generation_recipe import GenerationRecipe

log = logging.getLogger("seqtasks.lm_serving")

# evaluate: texts per call of the score signature; a stream is scored in pieces of about
# this many characters, each from [START] (as validation windows are).
SCORE_BATCH = 16
STREAM_PIECE_CHARACTERS = 2000


def lm_report(total_nll: float, tokens: int, units: dict, tokenizer: str, prefix: str = "") -> dict:
    """The metrics of a language model on a text, from its summed NLL.

    Args:
        total_nll: the negative log-likelihood of the text's target tokens, in nats,
            summed (padding never counted).
        tokens: the number of target tokens (``[END]`` included in documents mode).
        units: ``{"characters", "words"}`` of the raw text (code points; whitespace-
            separated words).
        tokenizer: ``char``, ``word`` or ``wordpiece``.
        prefix: prepended to every key (``"val_"`` during training).

    Returns:
        ``nll`` (nats per token), ``perplexity`` (``exp(nll)``), ``nll_per_character`` and
        ``nll_per_word`` (the same total divided by the text's characters and words, so
        runs with different tokenizers compare on the same text), ``bits_per_character``
        (``nll_per_character / ln 2``; reported for every tokenizer), ``tokens``.
    """
    nll = total_nll / max(tokens, 1)
    per_character = total_nll / max(units.get("characters", 0), 1)
    report = {
        "nll": nll,
        "perplexity": float(math.exp(min(nll, 700.0))),
        "nll_per_character": per_character,
        "bits_per_character": per_character / math.log(2),
        "nll_per_word": total_nll / max(units.get("words", 0), 1),
        "word_perplexity": float(math.exp(min(total_nll / max(units.get("words", 0), 1), 700.0))),
        "tokens": int(tokens),
        "tokenizer": tokenizer,
    }
    return {f"{prefix}{key}": value for key, value in report.items()}


def _signatures(version_dir: str, *names: str) -> list:
    """The named signatures of one loaded export (loaded once; the functions keep it
    alive). Raises UserError when the export lacks one."""
    from seqtasks.inference import load_serving_fn

    fn = load_serving_fn(version_dir)
    loaded = fn._seqtasks_loaded
    found = []
    for name in names:
        signature = fn if name == "serving_default" else loaded.signatures.get(name)
        if signature is None:
            raise UserError(f"{version_dir}: the export has no {name!r} signature")
        signature._seqtasks_loaded = loaded
        found.append(signature)
    return found


def _signature(version_dir: str, name: str):
    return _signatures(version_dir, name)[0]


class LanguageModelServing(GenerationRecipe):
    """The serving-side steps of :class:`~tasks.language_model.LanguageModelRecipe`."""

    output_name = "text"

    def predict(self, version_dir: str, metadata: dict, inputs: list[str]) -> list[dict]:
        """Continuations of prompts with the export's baked-in decoding (``serving_default``)."""
        texts, scores, _, _ = self.run_export(version_dir, "prompt", inputs, batch_size=32)
        return [
            {"prompt": prompt, "text": text, "score": score}
            for prompt, text, score in zip(inputs, texts, scores)
        ]

    def format_prediction(self, result: dict) -> str:
        """The prompt followed by its continuation, as one would read it."""
        return f"{result['prompt']}{result['text']}"

    def generate(
        self,
        version_dir: str,
        metadata: dict,
        prompts: list[str],
        *,
        num_samples: int = 1,
        max_length: int | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> list[dict]:
        """``num_samples`` continuations of each prompt from the export's ``generate``
        signature; unset options take the export's baked-in decoding settings.

        Sample ``j`` of a prompt uses seed ``seed + j`` (seed default 0), so the same
        command gives the same texts. A prompt with more tokens than the model's context
        keeps its last tokens (a warning says so).

        Returns:
            One dict per sample: ``prompt``, ``sample``, ``text``, ``score`` (mean
            log-probability per generated token), ``tokens`` and ``token_log_probs``.
        """
        import tensorflow as tf

        decoding = metadata.get("decoding") or {}
        preprocessing = metadata.get("preprocessing") or {}
        fn, score = _signatures(version_dir, "generate", "score")
        self._warn_long_prompts(score, prompts, preprocessing)
        rows = [(p, j) for p in prompts for j in range(num_samples)]
        base = 0 if seed is None else seed
        settings = {
            "max_length": (max_length or preprocessing.get("max_length", 200), tf.int32),
            "temperature": (temperature or decoding.get("temperature", 1.0), tf.float32),
            "top_k": (decoding.get("top_k", 0) if top_k is None else top_k, tf.int32),
            "top_p": (top_p or decoding.get("top_p", 1.0), tf.float32),
        }
        results = []
        for start in range(0, len(rows), 32):
            chunk = rows[start : start + 32]
            out = fn(
                prompt=tf.constant([p for p, _ in chunk]),
                seed=tf.constant([base + j for _, j in chunk], tf.int64),
                **{k: tf.constant([v] * len(chunk), dtype) for k, (v, dtype) in settings.items()},
            )
            for i, (prompt, j) in enumerate(chunk):
                count = int(out["tokens"][i])
                results.append(
                    {
                        "prompt": prompt,
                        "sample": j,
                        "text": out["text"][i].numpy().decode("utf-8"),
                        "score": float(out["score"][i]),
                        "tokens": count,
                        "token_log_probs": [
                            round(float(v), 4) for v in out["token_log_probs"][i][:count]
                        ],
                    }
                )
        return results

    def _warn_long_prompts(self, score, prompts: list[str], preprocessing: dict):
        limit = preprocessing.get("prompt_limit")
        if not limit or not any(prompts):
            return
        import tensorflow as tf

        counts = score(text=tf.constant(prompts))["tokens"].numpy()
        for prompt, count in zip(prompts, counts):
            tokens = int(count) - (preprocessing.get("mode") == "documents")  # minus [END]
            if tokens > limit:
                log.warning(
                    "the prompt %r has %d tokens; the model's context leaves room for %d: "
                    "its last %d are kept",
                    prompt[:40],
                    tokens,
                    limit,
                    limit,
                )

    def evaluate_export(
        self,
        version_dir: str,
        metadata: dict,
        *,
        data: str | None = None,
        format: str | None = None,
        text_column: str | None = None,
        split: str | None = None,
        max_examples: int | None = None,
        on_bad_rows: str = "error",
    ) -> dict:
        """NLL, perplexity, NLL per character and word (bits per character) of a text under
        the export's ``score`` signature, in the export's mode (``metadata["preprocessing"]
        ["mode"]``): documents each scored as ``[START] doc [END]``; a stream cut after a
        newline every ~:data:`STREAM_PIECE_CHARACTERS` characters, each piece from
        ``[START]`` (as the validation windows of training)."""
        import tensorflow as tf

        from seqtasks.data.lm_pipeline import count_units, stream_pieces
        from seqtasks.data.text_corpus import load_corpus
        from seqtasks.progress import progress

        preprocessing = metadata.get("preprocessing") or {}
        mode = preprocessing.get("mode", "documents")
        corpus = load_corpus(
            data,
            mode=mode,
            format=format,
            text_column=text_column,
            split=split,
            max_documents=max_examples,
            on_bad_rows=on_bad_rows,
        )
        texts = (
            stream_pieces(corpus.stream_text(), STREAM_PIECE_CHARACTERS)
            if mode == "stream"
            else corpus.texts
        )
        fn = _signature(version_dir, "score")
        total, tokens = 0.0, 0
        start_time = time.perf_counter()
        with progress("scoring", len(texts), "texts") as bar:
            for start in range(0, len(texts), SCORE_BATCH):
                out = fn(text=tf.constant(texts[start : start + SCORE_BATCH]))
                total -= float(out["log_likelihood"].numpy().sum())
                tokens += int(out["tokens"].numpy().sum())
                bar.update(len(texts[start : start + SCORE_BATCH]))
        seconds = time.perf_counter() - start_time
        report = lm_report(total, tokens, count_units(texts), preprocessing.get("tokenizer", ""))
        report.update(
            {
                "data": corpus.source,
                "mode": mode,
                "texts": len(texts),
                "characters": count_units(texts)["characters"],
                "tokens_per_second": round(tokens / max(seconds, 1e-9), 1),
                "skipped_empty": corpus.skipped_empty,
            }
        )
        if corpus.skipped_bad_rows is not None:
            report["skipped_bad_rows"] = corpus.skipped_bad_rows
        return report

    def format_report(self, report: dict) -> str:
        return "\n".join(
            [
                f"text      {report['texts']} {'documents' if report['mode'] == 'documents' else 'pieces of one stream'}, "
                f"{report['characters']} characters, {report['tokens']} {report['tokenizer']} tokens",
                f"NLL       {report['nll']:.4f} nats/token   perplexity {report['perplexity']:.2f}",
                f"per char  {report['nll_per_character']:.4f} nats   "
                f"{report['bits_per_character']:.4f} bits",
                f"per word  {report['nll_per_word']:.4f} nats   "
                f"word perplexity {report['word_perplexity']:.2f}",
            ]
        )
