#!/usr/bin/env python
"""Benchmark: seqtasks' sentiment model against a plain Keras and a PyTorch script.

The references are in ``bench/reference/``; all three get the same data, batch size
and number of steps.

Each repetition runs, each in its own process (so peak RSS is per run): seqtasks
(the recipe's own steps: ``load_data``, ``prepare`` with its length-bucketed
``tf.data`` pipeline, ``build_model``, ``compile_model``, then ``model.fit`` for
``--steps`` batches), the Keras reference (``TextVectorization``, fixed-length
padding) and the PyTorch reference (packed sequences, on the Keras reference's
ids). Then it prints a table of training throughput (examples/s, real tokens/s:
padding excluded), time to the end of the first step (from the process launch, and
the first step alone), peak RSS after training, and the ratio seqtasks/reference
(min/median/max over the repetitions); and one of inference: the exported
SavedModel (raw text in), the in-memory Keras models and the PyTorch model (token
ids in), p50 latency at batch 1 and examples/s at batch 64.

    python bench/compare_sentiment.py --repeats 3 --json
    python bench/compare_sentiment.py --dataset sst2 --sequence-length 64 --steps 300

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

DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
DATASETS = {
    "imdb": os.path.join(DATA, "imdb", "aclImdb_v1_train.tar.gz"),
    "sst2": os.path.join(DATA, "sst2", "train.tsv"),
}
SYSTEMS = ("seqtasks", "keras", "torch")


# --- the seqtasks worker (its own process) ------------------------------------------------


def seqtasks_worker(argv: list[str]) -> None:
    """Train seqtasks' default sentiment model for ``--steps`` batches through the recipe's
    steps, time it, export it and time the export and the in-memory model."""
    sys.path.insert(0, ROOT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    import tasks
    from seqtasks.data.pipeline import split_indices

    args = common.parser("seqtasks worker").parse_args(argv)
    recipe = tasks.get_recipe("sentiment")
    with tempfile.TemporaryDirectory(prefix="compare-sentiment-") as tmp:
        config = recipe.make_config(
            data=args.data,
            max_examples=args.max_examples,
            batch_size=args.batch_size,
            sequence_length=args.sequence_length,
            vocabulary_size=args.vocabulary_size,
            seed=args.seed,
            export_dir=os.path.join(tmp, "export"),
        ).validate()

        def count(ids, _):
            n, length = ids.shape
            return int(n), int(tf.math.count_nonzero(ids)), int(n * length)

        data, prepared, model, figures = common.seqtasks_training(
            recipe, config, tmp, args.steps, count, args.t0
        )
        result = {
            "system": "seqtasks",
            "vocabulary_size": prepared.info.vectorizer.vocabulary_size,
            **figures,
        }

        vectorizer = prepared.info.vectorizer
        _, val_idx = split_indices(len(data), config.validation_split, config.seed)
        texts = [data.texts[i] for i in val_idx[: common.INFERENCE_TEXTS]]  # as the references
        singles = [texts[i : i + 1] for i in range(common.SINGLE_CALLS)]
        export = recipe.export(model, prepared, config, {})
        serve = tf.saved_model.load(export).signatures["serving_default"]
        ids = [vectorizer.pad(vectorizer(tf.constant(t))).numpy() for t in singles]
        batch_ids = vectorizer.pad(vectorizer(tf.constant(texts))).numpy()
        result["inference"] = {
            "savedmodel": common.time_calls(
                lambda t: serve(text=tf.constant(t)),
                singles,
                texts,
            ),
            "keras_in_memory": common.time_calls(model.predict_on_batch, ids, batch_ids),
        }
        result["inference_mean_tokens"] = round(float(np.count_nonzero(batch_ids)) / len(texts), 1)
    common.write_result(args.result, result)


# --- the runner ---------------------------------------------------------------------------


def run_worker(system: str, common_args: list[str], tmp: str, extra: list[str]) -> dict:
    if system == "seqtasks":
        command = [sys.executable, os.path.abspath(__file__), "--worker", "seqtasks"]
    else:
        command = [sys.executable, os.path.join(REFERENCE, f"sentiment_{system}.py")]
    return common.run_worker([*command, *common_args, *extra], system, tmp)


def table(runs: dict[str, list[dict]]) -> str:
    """Markdown tables: medians per system and seqtasks/reference ratios (min/median/max)."""
    return common.table(runs, SYSTEMS)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        return seqtasks_worker(sys.argv[3:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="imdb", help="default imdb")
    p.add_argument("--data", default=None, help="other training data (overrides --dataset)")
    p.add_argument("--max-examples", type=int, default=8000, help="first N examples (8000)")
    p.add_argument("--steps", type=int, default=100, help="training steps per run (100)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--sequence-length", type=int, default=1000, help="tokens kept (seqtasks' default 1000)"
    )
    p.add_argument("--vocabulary-size", type=int, default=30000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    p.add_argument("--json", action="store_true", help="write bench/results/compare_sentiment.json")
    p.add_argument("--output", default=os.path.join(HERE, "results", "compare_sentiment.json"))
    args = p.parse_args()
    systems = [s for s in SYSTEMS if s in args.systems.split(",")]
    data = args.data or DATASETS[args.dataset]
    common_args = [
        "--data",
        data,
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--sequence-length",
        str(args.sequence_length),
    ]
    if args.max_examples:
        common_args += ["--max-examples", str(args.max_examples)]
    runs: dict[str, list[dict]] = {s: [] for s in systems}
    vocabulary = {"seqtasks": args.vocabulary_size}
    with tempfile.TemporaryDirectory(prefix="compare-sentiment-") as tmp:
        ids = os.path.join(tmp, "ids.npz")
        for repeat in range(args.repeats):
            for system in systems:
                if system == "keras":
                    # as many embedding rows as seqtasks' vocabulary: same parameter count
                    size = runs["seqtasks"][-1]["vocabulary_size"] if runs.get("seqtasks") else None
                    extra = [
                        "--vocabulary-size",
                        str(size or args.vocabulary_size),
                        "--save-ids",
                        ids,
                    ]
                elif system == "torch":
                    if not os.path.exists(ids):
                        sys.exit("error: the torch reference needs the keras one's ids (--systems)")
                    size = runs["keras"][-1]["vocabulary_size"]
                    extra = ["--ids", ids, "--vocabulary-size", str(size)]
                else:
                    extra = ["--vocabulary-size", str(vocabulary["seqtasks"])]
                out = run_worker(system, common_args, tmp, extra)
                runs[system].append(out)
                print(
                    f"repeat {repeat + 1}/{args.repeats} {system}: "
                    f"{out['examples_per_s']} examples/s, {out['wall_s']} s",
                    file=sys.stderr,
                )
                if args.json:  # after every run: an interrupted benchmark keeps what it measured
                    save(args, data, runs)
    print(table(runs))


def save(args, data: str, runs: dict[str, list[dict]]) -> None:
    """Write the settings, every run's figures and the tables to ``args.output``."""
    text = table(runs) if all(runs.values()) else None
    common.save_results(args.output, "compare_sentiment.py", data, vars(args), runs, text)


if __name__ == "__main__":
    main()
