#!/usr/bin/env python
"""Benchmark: `train --strategy multi-worker` on loopback against one process.

Trains the default sentiment model (bilstm) on the first ``--examples`` IMDB reviews
for ``--epochs`` epochs, once in one process (``--strategy auto``: no strategy) and
once with ``--workers`` worker processes on loopback ports (``--strategy
multi-worker``, ``TF_CONFIG`` per process, each process limited to
``--threads`` TensorFlow threads). Prints, per run: training seconds (the run's
``metrics.json``: the sum of its epochs), training examples/s (all workers
together), validation accuracy, and for the multi-worker run whether every worker
ended with bit-identical weights and how many exports were written.

With several workers the global batch is ``workers x batch_size`` (the batch size is
per replica), so a multi-worker epoch has 1/workers as many steps.

    python bench/distributed.py --workers 2 --examples 4000 --epochs 1 --json

Run by hand, never in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
IMDB = os.path.join(os.path.dirname(ROOT), "shared", "data", "imdb", "aclImdb_v1_train.tar.gz")

WORKER = """
import json, os, sys
sys.path.insert(0, {root!r})
import tensorflow as tf
threads = int(os.environ["BENCH_THREADS"])
if threads:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
import numpy as np
from seqtasks.training import train
from tasks import get_recipe
strategy, out = sys.argv[1:3]
recipe = get_recipe("sentiment")
config = recipe.make_config(data={data!r}, max_examples={examples}, epochs={epochs},
                            patience=100, export_dir=os.path.join(out, "export"),
                            run_dir=os.path.join(out, "run"))
result = train(recipe, config, verbose=0, strategy=strategy, resume=False)
index = result.metrics.get("distribution", {{}}).get("worker_index", 0)
np.savez(os.path.join(out, f"weights-{{index}}.npz"), *result.model.get_weights())
print("RESULT", json.dumps({{"metrics": result.metrics, "export": result.export_path}}))
"""


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run(script: str, workers: int, threads: int, out: str) -> dict:
    """Train with ``workers`` processes (1: no strategy); the chief's result and checks."""
    import numpy as np

    os.makedirs(out)
    ports = free_ports(workers)
    processes = []
    start = time.perf_counter()
    for index in range(workers):
        env = {**os.environ, "BENCH_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.pop("TF_CONFIG", None)
        strategy = "auto"
        if workers > 1:
            cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
            task = {"type": "worker", "index": index}
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": task})
            strategy = "multi-worker"
        processes.append(
            subprocess.Popen(
                [sys.executable, script, strategy, out],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for p in processes:
        stdout, stderr = p.communicate()
        if p.returncode != 0:
            sys.exit(f"a worker failed:\n{stderr[-3000:]}")
        line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT ") :]))
    wall = time.perf_counter() - start
    metrics = results[0]["metrics"]
    weights = [np.load(os.path.join(out, f"weights-{i}.npz")) for i in range(workers)]
    identical = all(
        all(np.array_equal(weights[0][k], other[k]) for k in weights[0].files)
        for other in weights[1:]
    )
    return {
        "workers": workers,
        "threads_per_worker": threads,
        "wall_seconds": round(wall, 1),
        "train_seconds": metrics["train_seconds"],
        "val_accuracy": round(metrics["val_accuracy"], 4),
        "identical_weights": identical,
        "exports": sorted(os.listdir(os.path.join(out, "export"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--examples", type=int, default=4000, help="IMDB reviews read")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--threads", type=int, default=0, help="TensorFlow threads per process (0: its default)"
    )
    parser.add_argument("--json", action="store_true", help="write results/distributed.json")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="seqtasks-bench-distributed-")
    script = os.path.join(folder, "worker.py")
    with open(script, "w", encoding="utf-8") as f:
        f.write(WORKER.format(root=ROOT, data=IMDB, examples=args.examples, epochs=args.epochs))
    train_examples = int(round(args.examples * 0.9))  # the recipe's default 10% validation
    rows = []
    for workers in (1, args.workers):
        row = run(script, workers, args.threads, os.path.join(folder, f"w{workers}"))
        row["train_examples_per_s"] = round(train_examples * args.epochs / row["train_seconds"], 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        f"\nspeed-up of {args.workers} workers over 1 process (training examples/s): "
        f"{rows[1]['train_examples_per_s'] / rows[0]['train_examples_per_s']:.2f}x"
    )
    if args.json:
        path = os.path.join(HERE, "results", "distributed.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "rows": rows, "cpus": os.cpu_count()}, f, indent=2)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
