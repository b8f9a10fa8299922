#!/usr/bin/env python
"""Benchmark: what each beam-search change buys, on one model's weights (issue 20).

Loads a translation export's Keras model and vocabularies with this checkout's code and
times :func:`seqtasks.decoding.beam_search` (beam 4, length penalty 0.6, min_length 1, in
a ``tf.function`` with a dynamic batch) on Multi30k ``test_2016_flickr`` sources, in four
settings timed in turns (median of ``--rounds``):

    full_buffer    early_stopping=False, cache_chunk=0: the loop runs until every
                   hypothesis has finished, over the whole 64-position cache (the round-1
                   algorithm; the per-block cache layout is this checkout's)
    settle         early_stopping=True, cache_chunk=0
    settle_grow    early_stopping=True, cache_chunk=16
    settle_grow_compact
                   the same, and finished inputs leave the batch between loops
                   (compact=True; this checkout's default)

All four give the same token ids (checked). Tokenization is outside the timed call.

    python bench/beam_ablation.py /tmp/i20/export-head/1
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "multi30k")
SETTINGS = {
    "full_buffer": (False, 0, False),
    "settle": (True, 0, False),
    "settle_grow": (True, 16, False),
    "settle_grow_compact": (True, 16, True),
}
BATCHES = ((1, 64), (32, 320))


def load_export_and_sources(version_dir: str, count: int):
    """The export's generator (this checkout's code) and the first ``count``
    test_2016_flickr sources as padded int32 ids ``(count, S)``."""
    import tensorflow as tf

    from seqtasks.export import read_metadata
    from tasks.translation.serving import load_translator

    generator = load_translator(version_dir, read_metadata(version_dir))
    with gzip.open(os.path.join(DATA, "test_2016_flickr.en.gz"), "rt", encoding="utf-8") as f:
        sources = [line.strip() for line in f][:count]
    ids = generator.source.encode(tf.constant(sources))
    return generator, ids.to_tensor() if isinstance(ids, tf.RaggedTensor) else ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version_dir")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "beam_ablation.json")
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from seqtasks.decoding import beam_search

    generator, ids = load_export_and_sources(args.version_dir, 320)
    model, length = generator.model, generator.max_length

    functions = {
        name: tf.function(
            lambda x, e=early, c=chunk, d=drop: beam_search(
                model, x, length, 4, 0.6, min_length=1, early_stopping=e, cache_chunk=c,
                compact=d,
            ),
            input_signature=[tf.TensorSpec((None, None), tf.int32)],
        )
        for name, (early, chunk, drop) in SETTINGS.items()
    }
    outputs = {}
    for name, fn in functions.items():  # trace, warm up, and check the outputs agree
        outputs[name] = np.concatenate(
            [np.asarray(fn(ids[i : i + 32])[0]) for i in range(0, 320, 32)]
        )
    agree = {n: bool((o == outputs["full_buffer"]).all()) for n, o in outputs.items()}
    seconds = {name: {b: [] for b, _ in BATCHES} for name in functions}
    for r in range(args.rounds):
        for batch, count in BATCHES:
            for name, fn in functions.items():
                t0 = time.perf_counter()
                for i in range(0, count, batch):
                    fn(ids[i : i + batch])
                seconds[name][batch].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{args.rounds}", flush=True)
    results = {}
    for name in functions:
        results[name] = {
            f"batch{b}_sentences_per_second": round(c / statistics.median(seconds[name][b]), 2)
            for b, c in BATCHES
        }
        results[name]["all_seconds"] = {
            f"batch{b}": [round(s, 2) for s in v] for b, v in seconds[name].items()
        }
        results[name]["same_tokens_as_full_buffer"] = agree[name]
        for b, _ in BATCHES:
            key = f"batch{b}_sentences_per_second"
            results[name][f"batch{b}_ratio_to_full_buffer"] = round(
                results[name][key] / results["full_buffer"][key], 2
            )
    generated = (outputs["settle_grow_compact"] > 0).sum(axis=1)
    out = {
        "command": "python bench/beam_ablation.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}, no GPU",
        "buffer_length": int(length),
        "mean_output_tokens": round(float(generated.mean()), 2),
        "results": results,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".tmp", "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    os.replace(args.output + ".tmp", args.output)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
