#!/usr/bin/env python
"""Benchmark: training throughput of MinGRU/MinLSTM against Keras LSTM/GRU (issue 19).

One training step is ``train_on_batch`` (Adam) of Embedding(8000, 128) -> recurrent layer
-> Dense(2) over its last state, so the recurrence, not a softmax, is what is timed.
Batch 32, random token ids, no padding. Each configuration runs in its own process (clean peak memory:
``ru_maxrss``), all configurations of a length one after the other in one run, so the
ratios compare like with like on this (noisy, shared) machine. Reported: tokens/s
(``batch * length * steps / seconds`` over ``--steps`` steps after 2 warm-up steps) and
peak resident memory.

Layers, at equal width (``--units``, default 256) and at about the LSTM's parameter count
(MinGRU 1,528 and MinLSTM 1,019 units against LSTM 256 over 128-wide embeddings):

    lstm, gru                     keras.layers (TensorFlow's CPU kernels)
    mingru, minlstm               scan="sequential" (the TensorFlow default)
    mingru-assoc, minlstm-assoc   scan="associative" (log-space, chunks of 64)
    mingru-params, minlstm-params the sequential scan at the LSTM's parameter count

    python bench/min_rnn_throughput.py                    # lengths 64 256 1000; ~15 min
    python bench/min_rnn_throughput.py --lengths 256 --layers lstm mingru

Writes ``bench/results/min_rnn_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = (
    "lstm", "gru", "mingru", "minlstm", "mingru-assoc", "minlstm-assoc",
    "mingru-params", "minlstm-params",
)  # fmt: skip
EMBEDDING, VOCABULARY, BATCH = 128, 8000, 32


def parameter_matched_units(kind: str, units: int) -> int:
    """Units of a min layer with about an LSTM(units)'s parameters over EMBEDDING inputs."""
    lstm = 4 * (EMBEDDING * units + units * units + units)
    gates = 2 if kind == "mingru" else 3
    return round(lstm / (gates * (EMBEDDING + 1)))


def build(name: str, units: int):
    import keras

    sys.path.insert(0, ROOT)
    from seqtasks.models import MinGRU, MinLSTM

    kind, _, variant = name.partition("-")
    if kind in ("lstm", "gru"):
        layer = (keras.layers.LSTM if kind == "lstm" else keras.layers.GRU)(units)
    else:
        cls = MinGRU if kind == "mingru" else MinLSTM
        width = parameter_matched_units(kind, units) if variant == "params" else units
        layer = cls(width, scan="associative" if variant == "assoc" else "sequential")
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, EMBEDDING)(ids)
    model = keras.Model(ids, keras.layers.Dense(2)(layer(x)))
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def run_one(name: str, length: int, units: int, steps: int) -> dict:
    import numpy as np

    model = build(name, units)
    rng = np.random.default_rng(0)
    x = rng.integers(1, VOCABULARY, size=(BATCH, length), dtype=np.int32)
    y = rng.integers(0, 2, size=(BATCH,))
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(x, y)
    seconds = time.perf_counter() - start
    return {
        "layer": name,
        "length": length,
        "parameters": int(sum(np.prod(w.shape) for w in model.layers[2].weights)),
        "tokens_per_second": round(BATCH * length * steps / seconds),
        "step_ms": round(1000 * seconds / steps, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "finite_loss": bool(np.isfinite(float(np.asarray(loss)))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1000])
    parser.add_argument("--layers", nargs="+", choices=LAYERS, default=list(LAYERS))
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # NAME:LENGTH, in a child process
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "min_rnn_throughput.json")
    )
    args = parser.parse_args()
    if args.one:
        name, length = args.one.split(":")
        print(json.dumps(run_one(name, int(length), args.units, args.steps)))
        return
    import keras

    sys.path.insert(0, ROOT)
    from seqtasks.versions import cpu_model

    results = {
        "command": "python bench/min_rnn_throughput.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "cpu": cpu_model()},
        "backend": keras.backend.backend(),
        "batch": BATCH,
        "embedding_dim": EMBEDDING,
        "units": args.units,
        "runs": [],
    }
    for length in args.lengths:
        for name in args.layers:
            out = subprocess.run(
                [sys.executable, __file__, "--one", f"{name}:{length}",
                 "--units", str(args.units), "--steps", str(args.steps)],
                check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            run = json.loads(out.stdout.strip().splitlines()[-1])
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
        same_length = [r for r in results["runs"] if r["length"] == length]
        base = {r["layer"]: r for r in same_length}.get("lstm")
        for run in same_length if base else []:
            run["vs_lstm"] = round(run["tokens_per_second"] / base["tokens_per_second"], 2)
    with open(args.output + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()
