#!/usr/bin/env python
"""Benchmark: the default sentiment recipe on the full IMDB training data.

Trains with the defaults (25,000 reviews; 10% held out for validation, seeded, by movie
since issue 18: ``--set grouped_validation=false`` gives the earlier random carve),
then scores the export on SST-2 dev (a different domain: short movie-review
snippets) and times the exported SavedModel. Writes
``bench/results/sentiment_imdb.json`` and prints a summary.

    python bench/sentiment_imdb.py                      # defaults
    python bench/sentiment_imdb.py --set model=gru      # any config override

Takes about 10-15 minutes on a 2-core CPU; run it by hand, not in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")


def run_json(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "cli.py"), *args, "--json"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(out.stdout)


def history_column(run_dir: str, name: str) -> list[float]:
    """One column of the run's per-epoch ``history.csv`` (for curves at equal time)."""
    import csv

    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        return [round(float(row[name]), 4) for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--export-dir", default="/tmp/seqtasks-bench/sentiment")
    parser.add_argument("--run-dir", default="/tmp/seqtasks-bench/run")
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "sentiment_imdb.json")
    )
    args = parser.parse_args()

    train_args = [
        "train",
        "sentiment",
        "--data",
        os.path.join(DATA, "imdb", "aclImdb_v1_train.tar.gz"),
        "--export-dir",
        args.export_dir,
        "--run-dir",
        args.run_dir,
    ]
    for item in args.set:
        train_args += ["--set", item]
    start = time.perf_counter()
    trained = run_json(train_args)
    wall = time.perf_counter() - start
    sst2 = run_json(
        ["evaluate", trained["export"], "--data", os.path.join(DATA, "sst2", "dev.tsv")]
    )

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    serve = tf.saved_model.load(trained["export"]).signatures["serving_default"]
    with open(os.path.join(DATA, "sst2", "dev.tsv"), encoding="utf-8") as f:
        texts = [line.split("\t")[0] for line in f.read().splitlines()[1:]]
    latency = {}
    for batch in (1, 64):
        inputs = tf.constant(texts[:batch])
        serve(text=inputs)  # warm-up
        runs = 50 if batch == 1 else 10
        t0 = time.perf_counter()
        for _ in range(runs):
            serve(text=inputs)
        latency[f"batch_{batch}_ms"] = round((time.perf_counter() - t0) / runs * 1000, 2)

    m = trained["metrics"]
    result = {
        "command": "python bench/sentiment_imdb.py " + " ".join(f"--set {s}" for s in args.set),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config_overrides": args.set,
        "imdb_validation": {
            k: m[k] for k in ("val_accuracy", "val_macro_f1", "val_loss", "val_confusion_matrix")
        },
        "epochs_run": m["epochs_run"],
        "best_epoch": m["best_epoch"],
        "seconds_per_epoch": m["seconds_per_epoch"],
        "val_accuracy_per_epoch": history_column(args.run_dir, "val_accuracy"),
        "train_seconds": m["train_seconds"],
        "prepare_seconds": m.get("prepare_seconds"),
        "peak_rss_mb": m["peak_rss_mb"],
        "wall_seconds_total": round(wall, 1),
        "sst2_dev": {k: sst2[k] for k in ("examples", "accuracy", "macro_f1")},
        "savedmodel_latency_cpu": latency,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
