#!/usr/bin/env python
"""Benchmark: seqtasks' translation Transformer against a plain Keras and a PyTorch script.

The references are in ``bench/reference/``; all three train the same model size
(3+3 blocks, d_model 256, feed-forward 512, 4 heads, learned positions for 64
tokens) on the same training split with the same WordPiece ids, batch size and
number of steps.

Each repetition runs, each in its own process (so peak RSS is per run): seqtasks
(the translation recipe's own steps: ``load_data``, ``prepare`` with its WordPiece
vocabularies and its length-bucketed ``tf.data`` pipeline, ``build_model``,
``compile_model``, then ``model.fit`` for ``--steps`` batches), the Keras
reference (keras.io's KerasHub example: fixed-length padding to 64) and the
PyTorch reference (``nn.Transformer``, each batch cut to its longest sentence, on
the Keras reference's ids). Then it prints a table of training throughput, time to
the end of the first step (from the process launch, and the first step alone),
peak RSS after training, and the ratio seqtasks/reference (min/median/max over
the repetitions); and one of inference on the first 64 validation sentences,
p50 latency at batch 1 and examples/s at batch 64:

- seqtasks' exported SavedModel: raw strings in, translations out (tokenization,
  decoding, detokenization in the graph), decoding as the export does by default
  (beam search, 4 hypotheses, length penalty 0.6; ``--export-decoding greedy``
  exports greedy decoding instead);
- seqtasks' in-memory Keras model: ids in, greedy, in a ``tf.function`` with the
  step cache (``seqtasks.decoding.decode``);
- the Keras reference: ids in, greedy, the example's ``GreedySampler`` re-running
  the whole model on the prompt at every step;
- the PyTorch reference: ids in, greedy, eager, ``inference_mode``, the decoder
  re-run on the prefix at every step.

Definitions. "examples/s": sentence pairs trained per second over steps 2..N
(the first step, with its tracing, is reported apart). "real tokens/s": the
non-padding source tokens plus the non-padding target tokens the loss is
computed on (the subword pieces and ``[END]``; ``[START]`` only enters the
decoder), per second over steps 2..N; the ids are the same in all three systems
(same vocabularies), so tokens/s compare directly. "tokens computed/s" counts
the padded positions too (source and target, as each system pads them).
"mean output tokens": tokens generated per sentence at batch 64 (``[END]``
included; the export's are its translations re-tokenized); decoding stops when
every sentence of the batch has ended, so the decoders do different amounts of
work when their models (trained for a few steps) differ in output length.

    python bench/compare_translation.py --steps 100 --repeats 3 --json
    python bench/compare_translation.py --steps 3 --repeats 1 --single-calls 2 --batch-calls 1

Run by hand, never in CI. Needs ``pip install -r bench/requirements.txt`` (PyTorch CPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE = os.path.join(HERE, "reference")
sys.path.insert(0, REFERENCE)

import common  # noqa: E402  (bench/reference/common.py)

DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "multi30k")
SYSTEMS = ("seqtasks", "keras", "torch")


# --- the seqtasks worker (its own process) ------------------------------------------------


def seqtasks_worker(argv: list[str]) -> None:
    """Train seqtasks' default translation model for ``--steps`` batches through the recipe's
    steps, time it, export it and time the export and the in-memory model."""
    sys.path.insert(0, ROOT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the export's WordPiece ops)

    import tasks
    from seqtasks.decoding import DecodingOptions, decode, make_sampler
    from seqtasks.text import END_ID

    p = common.translation_parser("seqtasks worker")
    p.add_argument("--export-decoding", default="beam")
    args = p.parse_args(argv)
    recipe = tasks.get_recipe("translation")
    with tempfile.TemporaryDirectory(prefix="compare-translation-") as tmp:
        config = recipe.make_config(
            data=args.data,
            max_examples=args.max_examples,
            batch_size=args.batch_size,
            sequence_length=args.sequence_length,
            vocabulary_size=args.vocabulary_size,
            source_lang=args.source_lang,
            target_lang=args.target_lang,
            decoding=args.export_decoding,
            seed=args.seed,
            export_dir=os.path.join(tmp, "export"),
        ).validate()

        def count(inputs, y):
            source = inputs["encoder_token_ids"]
            real = tf.math.count_nonzero(source) + tf.math.count_nonzero(y)
            return int(source.shape[0]), int(real), int(tf.size(source) + tf.size(y))

        _, prepared, model, figures = common.seqtasks_training(
            recipe, config, tmp, args.steps, count, args.t0
        )
        source_tokenizer = prepared.info.source_tokenizer
        target_tokenizer = prepared.info.target_tokenizer
        result = {
            "system": "seqtasks",
            "vocabulary_sizes": [
                source_tokenizer.vocabulary_size,
                target_tokenizer.vocabulary_size,
            ],
            "vocabulary_sha1": common.vocabulary_digest(
                source_tokenizer.vocabulary, target_tokenizer.vocabulary
            ),
            **figures,
        }

        # the same 64 validation sentences as the references (common.load_pairs' split)
        texts = prepared.info.validation_pairs.sources[: common.INFERENCE_TEXTS]
        singles = [texts[i : i + 1] for i in range(args.single_calls)]
        export = recipe.export(model, prepared, config, {})
        serve = tf.saved_model.load(export).signatures["serving_default"]

        def translate(batch: list[str]):
            return serve(text=tf.constant(batch))["translation"].numpy()

        greedy_options = DecodingOptions(strategy="greedy")
        sampler = make_sampler(greedy_options, target_tokenizer.vocabulary_size)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
        def greedy(ids):
            return decode(model, ids, greedy_options, config.sequence_length, sampler)[0]

        def encode(batch: list[str]) -> np.ndarray:
            return source_tokenizer(tf.constant(batch)).to_tensor().numpy()  # to the longest

        saved = common.time_calls(translate, singles, texts, args.batch_calls)
        pieces = target_tokenizer(tf.constant(translate(texts))).row_lengths().numpy()
        saved["output_tokens"] = round(
            float(np.minimum(pieces + 1, config.sequence_length - 1).mean()), 1
        )
        in_memory = common.time_calls(
            greedy, [encode(t) for t in singles], encode(texts), args.batch_calls
        )
        in_memory["output_tokens"] = common.output_tokens(greedy(encode(texts)), END_ID)
        result["inference"] = {
            f"savedmodel_{config.decoding}": saved,
            "keras_greedy_cached": in_memory,
        }
    common.write_result(args.result, result)


# --- the runner ---------------------------------------------------------------------------


def run_worker(system: str, common_args: list[str], tmp: str, extra: list[str]) -> dict:
    if system == "seqtasks":
        command = [sys.executable, os.path.abspath(__file__), "--worker", "seqtasks"]
    else:
        command = [sys.executable, os.path.join(REFERENCE, f"translation_{system}.py")]
    return common.run_worker([*command, *common_args, *extra], system, tmp)


def table(runs: dict[str, list[dict]]) -> str:
    """Markdown tables: medians per system and seqtasks/reference ratios (min/median/max)."""
    return common.table(runs, SYSTEMS)


def same_vocabularies(runs: dict[str, list[dict]]) -> bool | None:
    """Whether seqtasks and the Keras reference learned the same vocabularies in every
    repetition (None when one of them did not run)."""
    if not (runs.get("seqtasks") and runs.get("keras")):
        return None
    return all(
        s["vocabulary_sha1"] == k["vocabulary_sha1"]
        for s, k in zip(runs["seqtasks"], runs["keras"])
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        return seqtasks_worker(sys.argv[3:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DATA, help="folder of <split>.<lang> files (Multi30k)")
    p.add_argument("--source-lang", default="en")
    p.add_argument("--target-lang", default="de")
    p.add_argument("--max-examples", type=int, default=None, help="first N pairs (all)")
    p.add_argument("--steps", type=int, default=100, help="training steps per run (100)")
    p.add_argument("--batch-size", type=int, default=64, help="seqtasks' default 64")
    p.add_argument(
        "--sequence-length", type=int, default=64, help="tokens per sentence (seqtasks' 64)"
    )
    p.add_argument(
        "--vocabulary-size", type=int, default=8000, help="WordPiece bound (seqtasks' 8000)"
    )
    p.add_argument(
        "--export-decoding",
        choices=("beam", "greedy"),
        default="beam",
        help="decoding of seqtasks' export (beam: the recipe's default, 4 hypotheses)",
    )
    p.add_argument(
        "--single-calls", type=int, default=16, help="batch-1 calls timed, one sentence each (16)"
    )
    p.add_argument("--batch-calls", type=int, default=3, help="batch-64 calls timed (3)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    p.add_argument(
        "--json", action="store_true", help="write bench/results/compare_translation.json"
    )
    p.add_argument("--output", default=os.path.join(HERE, "results", "compare_translation.json"))
    args = p.parse_args()
    systems = [s for s in SYSTEMS if s in args.systems.split(",")]
    common_args = [
        "--data",
        args.data,
        "--source-lang",
        args.source_lang,
        "--target-lang",
        args.target_lang,
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--sequence-length",
        str(args.sequence_length),
        "--vocabulary-size",
        str(args.vocabulary_size),
        "--single-calls",
        str(args.single_calls),
        "--batch-calls",
        str(args.batch_calls),
    ]
    if args.max_examples:
        common_args += ["--max-examples", str(args.max_examples)]
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    with tempfile.TemporaryDirectory(prefix="compare-translation-") as tmp:
        ids = os.path.join(tmp, "ids.npz")
        for repeat in range(args.repeats):
            for system in systems:
                if system == "keras":
                    extra = ["--save-ids", ids]
                elif system == "torch":
                    if not os.path.exists(ids):
                        sys.exit("error: the torch reference needs the keras one's ids (--systems)")
                    extra = ["--ids", ids]
                else:
                    extra = ["--export-decoding", args.export_decoding]
                out = run_worker(system, common_args, tmp, extra)
                runs[system].append(out)
                print(
                    f"repeat {repeat + 1}/{args.repeats} {system}: "
                    f"{out['examples_per_s']} examples/s, {out['wall_s']} s",
                    file=sys.stderr,
                )
                if args.json:  # after every run: an interrupted benchmark keeps what it measured
                    save(args, runs)
    same = same_vocabularies(runs)
    if same is False:
        print(
            "warning: seqtasks and the Keras reference learned different vocabularies",
            file=sys.stderr,
        )
    print(table(runs))
    if same is not None:
        print(f"\nvocabularies of seqtasks and the Keras reference identical: {same}")


def save(args, runs: dict[str, list[dict]]) -> None:
    """Write the settings, every run's figures and the tables to ``args.output``."""
    text = table(runs) if all(runs.values()) else None
    settings = {**vars(args), "same_vocabularies": same_vocabularies(runs)}
    common.save_results(args.output, "compare_translation.py", args.data, settings, runs, text)


if __name__ == "__main__":
    main()
