"""The base of every recipe whose model generates a sequence (translation, captioning).

:class:`GenerationRecipe` holds what those recipes share, so a recipe file keeps
only the task's own choices (its data, its model, its source of encoder input and
its scores):

- training: teacher forcing with masked cross-entropy (label smoothing) and token
  accuracy; Adam with clipnorm, and for a Transformer the warm-up +
  inverse-square-root schedule and Adam(0.9, 0.98) of Vaswani et al. 2017,
  sec. 5.3 (:func:`seqtasks.losses.seq2seq_optimizer`), the default warm-up capped at
  a share of the run's steps (:meth:`GenerationRecipe.warmup_steps`);
- validation: teacher-forced NLL, perplexity and token accuracy plus the decoded
  outputs of the validation inputs (:meth:`GenerationRecipe.generation_metrics`);
- export: one :class:`~seqtasks.generation.Generator` as the SavedModel, with its
  ``serving_default`` and ``score`` signatures and the metadata every generation
  export carries (:meth:`GenerationRecipe.export_generator`);
- serving side: calling the export in batches (:meth:`GenerationRecipe.run_export`),
  perplexity from its ``score`` signature (:func:`export_perplexity`) and the
  report's decoding line (:func:`decoding_line`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, ClassVar

from seqtasks.config import TrainConfig
from seqtasks.recipe import Prepared, Recipe, explicit_fields, jit_compile

log = logging.getLogger(__name__)


class GenerationRecipe(Recipe):
    """Base of the recipes whose model generates a sequence (see the module docstring).

    Subclasses set :attr:`output_name` (the export's text output: ``"translation"``,
    ``"caption"``) besides the :class:`~seqtasks.recipe.Recipe` attributes.
    """

    output_name: ClassVar[str]

    def uses_schedule(self, config: TrainConfig) -> bool:
        """A Transformer trains with the warm-up + inverse-square-root schedule."""
        return config.model == "transformer"

    def compile_model(self, model, config: TrainConfig, prepared: Prepared | None = None) -> None:
        """Adam with clipnorm; a Transformer's warm-up is :meth:`warmup_steps`'s (capped
        to the run's length when ``prepared`` gives the number of training examples)."""
        from seqtasks.losses import seq2seq_optimizer

        loss, metrics = self.loss_and_metrics(config)
        scheduled = self.uses_schedule(config)
        slow, factor = self.slow_variables(model, config)
        optimizer = seq2seq_optimizer(
            config,
            warmup=scheduled,
            warmup_steps=self.warmup_steps(config, prepared) if scheduled else None,
            slow_variables=slow,
            slow_factor=factor,
        )
        model.compile(
            optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile(config)
        )

    def slow_variables(self, model, config: TrainConfig) -> tuple[list, float]:
        """``(variables, factor)``: trainable variables that learn at ``factor`` times the
        learning rate (default: none)."""
        return [], 1.0

    def warmup_steps(self, config: TrainConfig, prepared: Prepared | None = None) -> int:
        """The warm-up a run trains with: the default ``warmup_steps`` is capped at
        :data:`~seqtasks.losses.WARMUP_SHARE` (10%) of the run's optimizer steps.

        The run's steps are ``ceil(train_examples / batch_size) * epochs`` with
        ``train_examples`` from ``prepared.metadata["data"]``. A warm-up set explicitly
        (recorded by :meth:`~seqtasks.recipe.Recipe.make_config`) or different from the
        config's default (a preset, fine-tuning's short warm-up) is kept as it is, as is
        the default when ``prepared`` is None or does not count its training examples.
        """
        from seqtasks.losses import WARMUP_SHARE, capped_warmup, training_steps

        steps = config.warmup_steps
        default = type(config).__dataclass_fields__["warmup_steps"].default
        if prepared is None or "warmup_steps" in explicit_fields(config) or steps != default:
            return steps
        examples = (prepared.metadata.get("data") or {}).get("train_examples")
        if not examples:
            return steps
        total = training_steps(examples, config.batch_size, config.epochs)
        capped = capped_warmup(steps, total)
        if capped < steps:
            log.info(
                "warm-up of %d steps: %d%% of this run's ~%d optimizer steps (the default %d "
                "is longer than the run; --set warmup_steps=N sets it)",
                capped,
                round(100 * WARMUP_SHARE),
                total,
                steps,
            )
        return capped

    def loss_and_metrics(self, config: TrainConfig) -> tuple[Any, list]:
        from seqtasks.losses import MaskedCrossEntropy, masked_accuracy

        return MaskedCrossEntropy(config.label_smoothing), [masked_accuracy]

    # --- validation ----------------------------------------------------------------------

    def generation_metrics(
        self, model, validation, generator, inputs, config: TrainConfig, batch_size: int = 64
    ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        """Teacher-forced metrics of ``model`` and the decoded outputs of ``inputs``.

        Args:
            model: the trained Keras model (``fit``'s).
            validation: the ``tf.data`` validation batches (teacher forcing).
            generator: the :class:`~seqtasks.generation.Generator` of ``model``.
            inputs: the raw validation inputs ``generator`` decodes (strings, image
                bytes or feature arrays), in the order of the references.
            config: the run's config (its decoding options are reported).

        Returns:
            ``(forced, decoding, texts)``: ``forced`` has ``val_nll`` (nats per target
            token, no label smoothing), ``val_perplexity`` (``exp(val_nll)``) and
            ``val_token_accuracy``; ``decoding`` has ``decoding`` (the options as a
            dict) and ``decode_seconds``; ``texts`` the generated strings.
        """
        from seqtasks.decoding import options_from_config
        from seqtasks.metrics import teacher_forced_metrics

        forced = teacher_forced_metrics(model, validation)
        start = time.perf_counter()
        texts, _ = generator.generate_all(inputs, batch_size=batch_size)
        seconds = time.perf_counter() - start
        return (
            {
                "val_nll": forced["nll"],
                "val_perplexity": forced["perplexity"],
                "val_token_accuracy": forced["token_accuracy"],
            },
            {
                "decoding": dataclasses.asdict(options_from_config(config)),
                "decode_seconds": round(seconds, 2),
            },
            texts,
        )

    # --- export --------------------------------------------------------------------------

    def export_generator(
        self,
        generator,
        prepared,
        config: TrainConfig,
        metadata: dict,
        *,
        inputs: dict[str, str],
        outputs: dict[str, str],
        preprocessing: dict[str, Any],
        extra_files: dict[str, Any],
        score: bool = True,
        endpoints: dict[str, tuple[Any, list, str]] | None = None,
        spec=None,
    ) -> str:
        """Write ``generator`` as the next SavedModel version of ``config.export_dir``.

        Signatures: ``serving_default`` (:meth:`Generator.serve`) and ``score``
        (:meth:`Generator.score`: the source's input and ``target`` strings ->
        ``log_likelihood`` float32 ``[None]`` summed over the target's tokens,
        ``[END]`` included, and ``tokens`` int32 ``[None]``).

        Args:
            generator: the :class:`~seqtasks.generation.Generator` to export; its
                source has a fixed input spec.
            prepared: the run's :class:`~seqtasks.recipe.Prepared` (its metadata is stored).
            config: the run's config (stored, with its decoding options).
            metadata: facts from the driver (run, metrics, data fingerprint, ...).
            inputs, outputs: the ``serving_default`` signature described for people
                (name -> ``"dtype [shape]: meaning"``).
            preprocessing: what the export does to its inputs (tokenizer, lengths, ...).
            extra_files: files for ``assets.extra/`` (see
                :func:`seqtasks.export.write_version`).
            score: whether the export has the ``score`` signature (default True).
            endpoints: instead of the ``score`` signature, these: name -> ``(function,
                input_signature, description)`` (a language model's ``generate`` and
                ``score``); the descriptions go to ``metadata["signatures"]``.
            spec: the input spec of ``serving_default`` (default ``generator.spec()``).

        Returns:
            The new version's folder.
        """
        from seqtasks import export as exporting
        from seqtasks.decoding import options_from_config
        from seqtasks.versions import package_versions

        spec = spec if spec is not None else generator.spec()
        if endpoints is None and score:
            endpoints = {
                "score": (
                    generator.score,
                    generator.score_signature(),
                    f"{', '.join(inputs)}, target (tf.string [None]) -> log_likelihood "
                    "(float32 [None], summed over target tokens incl. [END]), tokens (int32 [None])",
                )
            }
        return exporting.write_version(
            config.export_dir,
            lambda path: exporting.save_serving_archive(
                path,
                [generator],
                generator.serving_function,
                [spec],
                extra_endpoints={name: (fn, sig) for name, (fn, sig, _) in (endpoints or {}).items()},
            ),
            metadata={
                "task": self.name,
                "task_type": self.task_type,
                "model": config.model,
                "config": config.to_dict(),
                "decoding": dataclasses.asdict(options_from_config(config)),
                "signature": {"inputs": inputs, "outputs": outputs},
                **(
                    {"signatures": {name: doc for name, (_, _, doc) in endpoints.items()}}
                    if endpoints
                    else {}
                ),
                "requires": ["tensorflow", "tensorflow_text"],
                "preprocessing": preprocessing,
                "versions": package_versions(),
                **prepared.metadata,
                **metadata,
            },
            extra_files=extra_files,
        )

    # --- serving side --------------------------------------------------------------------

    def run_export(
        self, version_dir: str, input_name: str, inputs, batch_size: int = 32
    ) -> tuple[list[str], list[float], float, Any]:
        """Call the export's ``serving_default`` on ``inputs`` in batches.

        Args:
            version_dir: an export version folder.
            input_name: the signature's input (``text``, ``image_bytes``, ``features``).
            inputs: a list of strings or bytes, or a float32 array ``(N, ...)``.
            batch_size: inputs per call (default 32).

        Returns:
            ``(texts, scores, seconds, loaded)``: the decoded :attr:`output_name`
            strings, the length-normalised log-probabilities, the wall time of the
            calls in seconds, and the loaded signature (for :func:`export_perplexity`).

        Raises:
            ExportError: if the SavedModel cannot be loaded.
        """
        import tensorflow_text  # noqa: F401  (registers the WordPiece ops)

        from seqtasks.inference import call_in_batches, load_serving_fn
        from seqtasks.progress import counting_calls, progress

        loaded = load_serving_fn(version_dir)
        start = time.perf_counter()
        with progress(f"{self.output_name}s", len(inputs), "inputs") as bar:
            fn = counting_calls(loaded, bar, input_name)
            outputs = call_in_batches(fn, input_name, inputs, batch_size)
        seconds = time.perf_counter() - start
        texts = [t.decode("utf-8") for t in outputs[self.output_name]]
        return texts, [float(s) for s in outputs["score"]], seconds, loaded


def export_perplexity(loaded, input_name: str, inputs, targets: list[str], batch_size: int = 64):
    """Perplexity of ``targets`` given ``inputs`` from an export's ``score`` signature.

    ``exp(-sum log P(target) / sum tokens)`` over all pairs, tokens counted with
    ``[END]``; None when the export has no ``score`` signature (older exports).

    Args:
        loaded: the ``serving_default`` function of :meth:`GenerationRecipe.run_export`.
        input_name: the source input's name (``text``).
        inputs, targets: aligned lists of raw inputs and target strings.
    """
    import numpy as np
    import tensorflow as tf

    score_fn = loaded._seqtasks_loaded.signatures.get("score")
    if score_fn is None:
        return None
    nll, tokens = 0.0, 0
    for i in range(0, len(targets), batch_size):
        out = score_fn(
            **{input_name: tf.constant(inputs[i : i + batch_size])},
            target=tf.constant(targets[i : i + batch_size]),
        )
        nll -= float(out["log_likelihood"].numpy().sum())
        tokens += int(out["tokens"].numpy().sum())
    return float(np.exp(nll / max(tokens, 1)))


def decoding_line(report: dict, rate_key: str, unit: str) -> str | None:
    """The report line ``decoding  beam (beam 4, length penalty 0.6), 12.3 <unit>/s``, or
    None when the report has no decoding options."""
    decoding = report.get("decoding") or {}
    if not decoding:
        return None
    return (
        f"decoding  {decoding.get('strategy')} (beam {decoding.get('beam_size')}, "
        f"length penalty {decoding.get('length_penalty')}), "
        f"{report[rate_key]} {unit}/s"
    )



def decoded_score_callback(name: str, score):
    """A Keras callback that adds a decoded validation score to each epoch's logs.

    ``score(model) -> float`` decodes the validation inputs with the training model's
    current weights (e.g. corpus BLEU-4 of generated captions); the figure goes to the
    epoch logs as ``name`` before early stopping, the best checkpoint and checkpoint
    averaging read them (:meth:`seqtasks.recipe.Recipe.epoch_callbacks`), and to
    ``history.csv``. It costs one decoding pass over the validation inputs per epoch.
    """
    import keras

    class DecodedScore(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            start = time.perf_counter()
            value = float(score(self.model))
            if logs is not None:
                logs[name] = value
            seconds = time.perf_counter() - start
            log.info("epoch %d: %s %.2f (decoded in %.1f s)", epoch + 1, name, value, seconds)

    return DecodedScore()
