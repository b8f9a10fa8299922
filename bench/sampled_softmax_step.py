#!/usr/bin/env python
"""Benchmark: a word-level language model's training step with the full softmax and with
sampled softmax (``sampled_softmax=K``), side by side in one process (issue 18).

The models of ``bench/pretrain_imdb.py`` (12,000 words, 128-dim embeddings, one LSTM layer
of 256 units) on random ids, batch 64 x 128 tokens; ``train_on_batch`` with the recipe's
loss and metric; the median of 5 steps after 2 warm-up steps, the variants interleaved.

    python bench/sampled_softmax_step.py

Writes ``bench/results/sampled_softmax_step.json``. Run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocabulary-size", type=int, default=12000)
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--sampled", type=int, nargs="+", default=[0, 256, 1024, 4096])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "sampled_softmax_step.json")
    )
    args = parser.parse_args()
    from seqtasks.losses import MaskedCrossEntropy, token_accuracy
    from seqtasks.models.language_models import RNNLanguageModel

    V = args.vocabulary_size
    ids = np.random.default_rng(0).integers(4, V, (64, 128)).astype("int32")
    models = {}
    for k in args.sampled:
        model = RNNLanguageModel(V, 128, args.hidden_dim, 1, args.cell, num_sampled=k)
        model({"decoder_token_ids": ids[:1, :2]})
        model.compile("adam", MaskedCrossEntropy(num_sampled=k), metrics=[token_accuracy(k)])
        models[k] = model
    times: dict[int, list[float]] = {k: [] for k in args.sampled}
    for step in range(args.steps + 2):
        for k, model in models.items():  # interleaved: the same load for every variant
            start = time.perf_counter()
            model.train_on_batch({"decoder_token_ids": ids, "target_ids": ids}, ids)
            if step >= 2:
                times[k].append(time.perf_counter() - start)
    full = float(np.median(times[0])) if 0 in times else None
    rows = []
    for k in args.sampled:
        seconds = float(np.median(times[k]))
        rows.append(
            {
                "sampled_softmax": k,
                "seconds_per_step": round(seconds, 3),
                "tokens_per_second": round(64 * 128 / seconds),
                **({"speedup_vs_full": round(full / seconds, 2)} if full else {}),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "command": "python bench/sampled_softmax_step.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "model": {"vocabulary_size": V, "cell": args.cell, "hidden_dim": args.hidden_dim,
                  "embedding_dim": 128, "batch": [64, 128]},
        "rows": rows,
    }  # fmt: skip
    with open(args.output + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()
