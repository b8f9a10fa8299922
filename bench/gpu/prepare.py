#!/usr/bin/env python
"""Prepare the JAX GPU benchmark here (with TensorFlow): token-id batches and vendored wheels.

The GPU machine has JAX, PyTorch and NumPy but no TensorFlow, no Keras and no
package registry, so everything ``bench/gpu/train_jax.py`` needs that it lacks
is made here:

1. ``data``: the recipe's own steps (``make_config``, ``load_data``, ``prepare``
   with its length-bucketed ``tf.data`` pipeline, ``build_model``,
   ``compile_model``) turn IMDB (sentiment) and Multi30k En->De (translation)
   into one epoch of training batches, saved as
   ``bench/gpu/data/<task>.npz`` (the batches exactly as ``model.fit`` gets
   them: right-padded to the bucket boundary, ids as uint16 when they fit) and
   ``<task>.json`` (the model builder and its arguments as the recipe called
   it, the serialised optimizer and loss, the metrics, the parameter count,
   the seqtasks config, batch statistics).
2. ``vendor``: ``pip install --target`` of the pinned pure-Python packages
   (:data:`PURE`) into ``bench/gpu/vendor/py`` and of the binary ones
   (:data:`BINARY`, manylinux x86-64 wheels) into
   ``bench/gpu/vendor/cp<XY>`` for each ``--python-version`` (3.12: the GPU
   image's ``python3``, 3.12.3 as seen there in 2026-11).

Both folders are git-ignored; carry them to the device
(``carry: ["bench/gpu/data", "bench/gpu/vendor"]``)::

    python bench/gpu/prepare.py                      # both tasks, full data, and the vendor folder
    python bench/gpu/prepare.py --only data --task sentiment --max-examples 2000
    python bench/gpu/prepare.py --only vendor --python-version 3.12 --python-version 3.11

Run by hand, never in CI.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
OUTPUT = os.path.join(HERE, "data")
VENDOR = os.path.join(HERE, "vendor")

# What the GPU image lacks (KINDS.md's package list, 2026-11-17): Keras, keras-hub and
# their pure-Python dependency namex; optree, which Keras needs on the JAX backend
# (keras/src/tree/tree_api.py), is binary. Same versions as requirements.txt.
PURE = ("keras==3.15.1", "keras-hub==0.32.0", "namex==0.1.0")
BINARY = ("optree==0.20.0",)
# Already on the GPU image and imported by Keras/keras-hub at import time, so not
# vendored: numpy, absl-py, h5py, ml-dtypes, packaging, rich, regex, typing-extensions
# (optree), tokenizers (keras_hub/src/tokenizers/byte_pair_tokenizer.py).
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
)

TASKS = {
    "sentiment": {
        "data": os.path.join(DATA, "imdb", "aclImdb_v1_train.tar.gz"),
        "builders": {"build_text_classifier": "seqtasks.models.classifier"},
    },
    "translation": {
        "data": os.path.join(DATA, "multi30k"),
        "builders": {
            "TransformerSeq2Seq": "seqtasks.models.seq2seq",
            "RNNAttentionSeq2Seq": "seqtasks.models.seq2seq",
        },
    },
}


# --- data ---------------------------------------------------------------------------------


def prepare_task(task: str, args) -> dict:
    """One epoch of ``task``'s training batches and its model description; returns the summary."""
    sys.path.insert(0, ROOT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import importlib

    import keras
    import numpy as np

    import tasks
    from seqtasks.io import write_json_atomic
    from seqtasks.training import seed_everything
    from seqtasks.versions import package_versions

    recipe = tasks.get_recipe(task)
    overrides = dict(item.split("=", 1) for item in args.set if item.startswith(f"{task}."))
    overrides = {key.split(".", 1)[1]: value for key, value in overrides.items()}
    if args.max_examples:
        overrides["max_examples"] = args.max_examples
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"gpu-prepare-{task}-") as tmp:
        config = recipe.make_config(
            data=TASKS[task]["data"], export_dir=os.path.join(tmp, "export"), **overrides
        ).validate()
        seed_everything(config.seed)
        data = recipe.load_data(config)
        prepared = recipe.prepare(config, data, tmp)
        # Build through the recipe, recording the call it makes to the seqtasks builder.
        # The spy replaces the name where the call looks it up: in the recipe's module if it
        # imported the builder, else in the builder's own module (build_seq2seq calls it).
        recipe_module = importlib.import_module(recipe.__class__.__module__)
        spies = {}
        for name, home in TASKS[task]["builders"].items():
            module = recipe_module if hasattr(recipe_module, name) else importlib.import_module(home)
            spies[name] = mock.patch.object(module, name, wraps=getattr(module, name))
        called = {name: patcher.start() for name, patcher in spies.items()}
        try:
            model = recipe.build_model(config, prepared)
        finally:
            for patcher in spies.values():
                patcher.stop()
        (name, spy), *more = [(n, s) for n, s in called.items() if s.call_count]
        assert not more and spy.call_count == 1, "the recipe called more than one builder"
        recipe.compile_model(model, config)
        _, metrics = recipe.loss_and_metrics(config)

        arrays, stats = {}, {"batches": 0, "examples": 0, "real_tokens": {}, "padded_tokens": {}}
        shapes = set()
        for index, (inputs, targets) in enumerate(prepared.train):
            if args.max_batches and index >= args.max_batches:
                break
            inputs = inputs if isinstance(inputs, dict) else {"token_ids": inputs}
            parts = {key: value.numpy() for key, value in inputs.items()}
            parts["targets"] = targets.numpy()
            for key, value in parts.items():
                if key != "targets" or task == "translation":
                    stats["real_tokens"][key] = stats["real_tokens"].get(key, 0) + int(
                        np.count_nonzero(value)
                    )
                    stats["padded_tokens"][key] = stats["padded_tokens"].get(key, 0) + value.size
                arrays[f"b{index:05d}/{key}"] = compact(value)
            shapes.add(tuple(sorted((k, v.shape) for k, v in parts.items())))
            stats["batches"] += 1
            stats["examples"] += len(parts["targets"])
        stats["distinct_shapes"] = len(shapes)

    os.makedirs(args.output, exist_ok=True)
    npz = os.path.join(args.output, f"{task}.npz")
    partial = npz + ".partial.npz"
    np.savez_compressed(partial, **arrays)
    os.replace(partial, npz)
    description = {
        "task": task,
        "data": os.path.relpath(TASKS[task]["data"], ROOT),
        "builder": {
            "module": TASKS[task]["builders"][name],
            "name": name,
            "args": list(spy.call_args.args),
            "kwargs": dict(spy.call_args.kwargs),
        },
        # The recipe's Transformer seq2seq model is built by a call on a dummy batch.
        "build_call": task == "translation",
        "compile": {
            "optimizer": keras.optimizers.serialize(model.optimizer),
            "loss": keras.losses.serialize(model.loss),
            "metrics": [metric_spec(metric) for metric in metrics],
        },
        "parameters": int(model.count_params()),
        "config": config.to_dict(),
        "prepared": prepared.metadata,
        "batches": stats,
        "prepare_seconds": round(time.perf_counter() - start, 1),
        "versions": package_versions(),
    }
    write_json_atomic(os.path.join(args.output, f"{task}.json"), to_json(description))
    print(
        f"{task}: {stats['batches']} batches, {stats['examples']} examples, "
        f"{stats['distinct_shapes']} shapes, {model.count_params():,} parameters -> "
        f"{os.path.relpath(npz)} ({os.path.getsize(npz) / 2**20:.1f} MiB) "
        f"in {description['prepare_seconds']} s"
    )
    return description


def compact(array):
    """Token ids as uint16 when they fit (halves the file), anything else unchanged."""
    import numpy as np

    if array.dtype.kind in "iu" and array.size and array.min() >= 0 and array.max() < 2**16:
        return array.astype(np.uint16)
    return array


def metric_spec(metric):
    """A serialised Keras metric object, or ``module.name`` of a metric function."""
    import keras

    if isinstance(metric, keras.metrics.Metric):
        return keras.metrics.serialize(metric)
    return f"{inspect.getmodule(metric).__name__}.{metric.__name__}"


def to_json(value):
    """``value`` with NumPy scalars and tuples made JSON-serialisable."""
    return json.loads(
        json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    )


# --- vendor -------------------------------------------------------------------------------


def vendor(python_versions: list[str], target: str) -> None:
    """``pip install --target`` the packages the GPU machine lacks (see the module docstring)."""
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile"]
    if os.path.isdir(target):
        shutil.rmtree(target)
    subprocess.run([*pip, "--target", os.path.join(target, "py"), *PURE], check=True)
    for version in python_versions:
        platforms = [flag for p in PLATFORMS for flag in ("--platform", p)]
        subprocess.run(
            [
                *pip,
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                version,
                *platforms,
                "--target",
                os.path.join(target, "cp" + version.replace(".", "")),
                *BINARY,
            ],
            check=True,
        )
    for folder in sorted(os.listdir(target)):
        print(f"vendor/{folder}: {folder_size(os.path.join(target, folder)) / 2**20:.1f} MiB")
    print(f"vendor: {folder_size(target) / 2**20:.1f} MiB in all ({', '.join(PURE + BINARY)})")


def folder_size(path: str) -> int:
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(path)
        for name in names
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("data", "vendor"), help="Do one of the two steps.")
    parser.add_argument(
        "--task", action="append", choices=tuple(TASKS), help="Task(s) to prepare (default: both)."
    )
    parser.add_argument(
        "--max-examples", type=int, default=None, help="Read only the first N examples."
    )
    parser.add_argument(
        "--max-batches", type=int, default=None, help="Keep at most N batches (default: an epoch)."
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TASK.KEY=VALUE",
        help="Config override of one task, e.g. sentiment.batch_size=128.",
    )
    parser.add_argument("--output", default=OUTPUT, help="Folder of the .npz/.json files.")
    parser.add_argument(
        "--python-version",
        action="append",
        help="CPython version(s) of the binary wheels (default: 3.12 and this interpreter's).",
    )
    args = parser.parse_args()
    if args.only != "vendor":
        for task in args.task or tuple(TASKS):
            prepare_task(task, args)
    if args.only != "data":
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        vendor(args.python_version or sorted({"3.12", here}), VENDOR)


if __name__ == "__main__":
    main()
