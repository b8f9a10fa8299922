#!/usr/bin/env python
"""Does XLA (``jit_compile``) speed up training steps? Sentiment bilstm and translation Transformer.

For each recipe and each ``jit_compile`` value (``false``, ``true``), in a fresh
process per repetition: the recipe's own ``load_data``, ``prepare`` (length-bucketed
pipeline), ``build_model`` and ``compile_model``, then ``model.fit`` over the same
``--steps`` batches twice (2 epochs; the data epoch is not advanced, so epoch 2
repeats epoch 1's batches and shapes). Epoch 1 includes tracing and, with XLA, one
compilation per distinct batch shape; epoch 2 is the steady state, every shape
already compiled. Prints medians over ``--repeats``. seqtasks turns TensorFlow's
op determinism on, under which Keras silently runs without XLA; the ``true``
runs turn it off, as the training driver does for ``jit_compile=true``.

    python bench/jit_compile.py --repeats 3 --steps 8 --json

Run by hand, never in CI. Writes ``bench/results/jit_compile.json`` with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
RECIPES = {
    "sentiment": {"data": os.path.join(DATA, "imdb", "aclImdb_v1_train.tar.gz")},
    "translation": {
        "data": os.path.join(DATA, "multi30k"),
        "source_lang": "en",
        "target_lang": "de",
        "model": "transformer",
    },
}


def worker(recipe_name: str, jit: str, steps: int, max_examples: int) -> dict:
    """One run in this process: fit ``steps`` batches twice; seconds per epoch."""
    sys.path.insert(0, ROOT)
    import keras
    import tensorflow as tf

    import tasks
    from seqtasks.training import seed_everything

    recipe = tasks.get_recipe(recipe_name)
    with tempfile.TemporaryDirectory(prefix="jit-compile-") as tmp:
        config = recipe.make_config(
            **RECIPES[recipe_name], max_examples=max_examples, jit_compile=jit
        ).validate()
        seed_everything(config.seed)
        if jit == "true":  # Keras turns XLA off under TensorFlow's op determinism
            from tensorflow.python.framework import config as tf_config

            tf_config.disable_op_determinism()
        prepared = recipe.prepare(config, recipe.load_data(config), tmp)
        model = recipe.build_model(config, prepared)
        recipe.compile_model(model, config)
        batches = prepared.train.take(steps).cache()
        batches = batches.apply(tf.data.experimental.assert_cardinality(steps))
        shapes = {tuple(tuple(t.shape) for t in _inputs(x)) for x, _ in batches}
        ends, done = [], []

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                ends.append(time.perf_counter())

            def on_train_batch_end(self, batch, logs=None):
                done.append(batch)

            def on_epoch_end(self, epoch, logs=None):
                ends.append(time.perf_counter())

        model.fit(batches, epochs=2, verbose=0, callbacks=[Clock()])
        assert len(done) == 2 * steps, done
    return {
        "recipe": recipe_name,
        "jit_compile": jit,
        "resolved_jit_compile": bool(model.jit_compile),
        "steps": steps,
        "distinct_shapes": len(shapes),
        "epoch1_s": round(ends[1] - ends[0], 2),
        "epoch2_s": round(ends[3] - ends[2], 2),
    }


def _inputs(x):
    return list(x.values()) if isinstance(x, dict) else [x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", action="append", choices=sorted(RECIPES))
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-examples", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", nargs=2, metavar=("RECIPE", "JIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.worker:
        print(json.dumps(worker(*args.worker, args.steps, args.max_examples)))
        return
    runs = []
    for repeat in range(args.repeats):
        for name in args.recipe or sorted(RECIPES):
            for jit in ("false", "true"):
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", name, jit, "--steps", str(args.steps)]
                    + ["--max-examples", str(args.max_examples)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append({**json.loads(out.stdout.strip().splitlines()[-1]), "repeat": repeat})
                print(json.dumps(runs[-1]), flush=True)
    print("| recipe | jit_compile | shapes | epoch 1 s (compile incl.) | epoch 2 s (steady) |")
    print("|---|---|---|---|---|")
    summary = []
    for name in args.recipe or sorted(RECIPES):
        for jit in ("false", "true"):
            rows = [r for r in runs if r["recipe"] == name and r["jit_compile"] == jit]
            row = {
                "recipe": name,
                "jit_compile": jit,
                "distinct_shapes": rows[0]["distinct_shapes"],
                "epoch1_s_median": statistics.median(r["epoch1_s"] for r in rows),
                "epoch2_s_median": statistics.median(r["epoch2_s"] for r in rows),
            }
            summary.append(row)
            print(
                f"| {name} | {jit} | {row['distinct_shapes']} | {row['epoch1_s_median']} "
                f"| {row['epoch2_s_median']} |"
            )
    if args.json:
        path = os.path.join(HERE, "results", "jit_compile.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"summary": summary, "runs": runs}, f, indent=2)
        os.replace(path + ".tmp", path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
