#!/usr/bin/env python
"""How much of a training epoch is padding, for a set of length-bucket boundaries.

No training: the recipe's own ``load_data`` and ``prepare`` build the training
pipeline (its vocabulary or subword tokenizers, its length-bucketed ``tf.data``
batches), then one epoch of it is read and every batch's token ids are counted:
real tokens (id != 0), tokens as batched (padded to the bucket's boundary), and
tokens had each batch been padded to its own longest row instead. It also counts
the distinct batch shapes (each one is a trace, or an XLA compilation with
``jit_compile``).

Schemes: ``new`` is :func:`seqtasks.data.pipeline.bucket_boundaries`' default
(geometric, x1.25 from 8); ``old`` the boundaries used before (powers of two from
16, ``smallest=16, ratio=2``).

    python bench/padding.py --dataset imdb --dataset sst2 --dataset multi30k --json

Run by hand, never in CI. Writes ``bench/results/padding.json`` with ``--json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")
DATASETS = {
    "imdb": ("sentiment", {"data": os.path.join(DATA, "imdb", "aclImdb_v1_train.tar.gz")}),
    "sst2": ("sentiment", {"data": os.path.join(DATA, "sst2", "train.tsv")}),
    "multi30k": (
        "translation",
        {"data": os.path.join(DATA, "multi30k"), "source_lang": "en", "target_lang": "de"},
    ),
}
SCHEMES = {"old": {"smallest": 16, "ratio": 2.0}, "new": {}}


def count_epoch(dataset) -> dict:
    """Real, bucket-padded and batch-max-padded token counts over one pass of ``dataset``."""
    import numpy as np

    real = padded = batch_max = batches = 0
    shapes = set()
    for inputs, _ in dataset:
        arrays = list(inputs.values()) if isinstance(inputs, dict) else [inputs]
        shapes.add(tuple(tuple(a.shape) for a in arrays))
        batches += 1
        for ids in arrays:
            ids = np.asarray(ids)
            lengths = (ids != 0).sum(axis=1)  # right-padded: the row's real length
            real += int(lengths.sum())
            padded += int(ids.size)
            batch_max = batch_max + int(lengths.max()) * ids.shape[0]
    return {
        "batches": batches,
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_share": round(1 - real / padded, 4),
        "padding_share_if_batch_max": round(1 - real / batch_max, 4),
        "distinct_shapes": len(shapes),
    }


def measure(name: str, scheme: str, max_examples: int | None) -> dict:
    """Prepare ``name``'s training pipeline with ``scheme``'s boundaries and count one epoch."""
    sys.path.insert(0, ROOT)
    import tasks
    from seqtasks.data import pipeline, teacher_forcing

    recipe_name, fields = DATASETS[name]
    recipe = tasks.get_recipe(recipe_name)
    boundaries = functools.partial(pipeline.bucket_boundaries, **SCHEMES[scheme])
    saved = pipeline.bucket_boundaries, teacher_forcing.bucket_boundaries
    pipeline.bucket_boundaries = teacher_forcing.bucket_boundaries = boundaries
    try:
        with tempfile.TemporaryDirectory(prefix="padding-") as tmp:
            config = recipe.make_config(**fields, max_examples=max_examples).validate()
            start = time.perf_counter()
            prepared = recipe.prepare(config, recipe.load_data(config), tmp)
            result = count_epoch(prepared.train)
    finally:
        pipeline.bucket_boundaries, teacher_forcing.bucket_boundaries = saved
    result.update(
        {
            "dataset": name,
            "scheme": scheme,
            "boundaries": boundaries(config.sequence_length),
            "sequence_length": config.sequence_length,
            "batch_size": config.batch_size,
            "seconds": round(time.perf_counter() - start, 1),
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", choices=sorted(DATASETS))
    parser.add_argument("--scheme", action="append", choices=sorted(SCHEMES))
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="write bench/results/padding.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows = [
        measure(name, scheme, args.max_examples)
        for name in args.dataset or sorted(DATASETS)
        for scheme in args.scheme or list(SCHEMES)
    ]
    print("| dataset | scheme | boundaries | padding share | if padded to batch max | shapes |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['dataset']} | {r['scheme']} | {len(r['boundaries'])} | {r['padding_share']:.1%}"
            f" | {r['padding_share_if_batch_max']:.1%} | {r['distinct_shapes']} |"
        )
    if args.json:
        path = os.path.join(HERE, "results", "padding.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
        os.replace(path + ".tmp", path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
