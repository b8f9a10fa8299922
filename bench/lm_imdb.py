#!/usr/bin/env python
"""Benchmark: the language-model recipe on IMDB reviews, WordPiece subwords, documents mode.

Trains ``train language-model --data ../shared/data/imdb --tokenizer wordpiece`` (the 25,000
labelled and 50,000 unlabelled reviews of ``../shared/data/imdb``, each review ``[START]
tokens [END]``; validation: a seeded share of the reviews, ``--validation-split``), then
records the validation NLL per token, perplexity, NLL per word and per character, word
perplexity, training tokens per second, peak resident memory, the seconds spent reading,
learning the vocabulary and tokenizing, and three seeded samples of the export.

The pretraining that the issue "Pretrain, then fine-tune" starts from is the same command
without the limits (hours on this CPU; resumable: run it again after an interruption):

    python cli.py train language-model --data ../shared/data/imdb --tokenizer wordpiece \\
        --set validation_split=0.02

A bounded run (``--max-examples`` training windows, ``--epochs``) measures the pipeline:

    python bench/lm_imdb.py --max-examples 7000 --epochs 1

Writes ``bench/results/lm_imdb.json``. Run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "imdb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--validation-split", type=float, default=0.02)
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument(
        "--vocabulary",
        help="the vocabulary.txt of an earlier run on the same data and tokenizer settings: "
        "copied into the new run directory, where the recipe reuses it instead of learning "
        "WordPiece again (about 30 minutes on 2 cores for the 75,000 reviews)",
    )
    parser.add_argument("--output", default=os.path.join(ROOT, "bench", "results", "lm_imdb.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from seqtasks.config import parse_assignments
    from seqtasks.export import read_metadata
    from seqtasks.training import train
    from tasks import get_recipe

    stamp = time.strftime("%Y%m%d-%H%M%S")
    recipe = get_recipe("language-model")
    config = recipe.make_config(
        **{
            "data": DATA,
            "tokenizer": "wordpiece",
            "epochs": args.epochs,
            "max_examples": args.max_examples,
            "validation_split": args.validation_split,
            "export_dir": "/tmp/seqtasks-bench/lm-imdb",
            "run_dir": f"/tmp/seqtasks-bench/lm-imdb-{stamp}",
            **parse_assignments(args.set),
        }
    )
    if args.vocabulary:
        os.makedirs(config.run_dir)
        shutil.copy(args.vocabulary, os.path.join(config.run_dir, "vocabulary.txt"))
    start = time.perf_counter()
    result = train(recipe, config, verbose=2)
    wall = time.perf_counter() - start
    metadata = read_metadata(result.export_path)
    samples = recipe.generate(result.export_path, metadata, ["", "This movie", "I"], seed=1)
    metrics = {k: v for k, v in result.metrics.items() if k != "samples"}
    train_seconds = sum(metrics.get("epoch_seconds") or [metrics["train_seconds"]])
    tokens = metadata["data"]["train_tokens"] * metrics["epochs_run"]
    report = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "config": config.to_dict(),
        "data": metadata["data"],
        "vocabulary_size": metadata["vocabulary_size"],
        "metrics": metrics,
        "train_tokens_per_second": round(tokens / max(train_seconds, 1e-9), 1),
        "wall_seconds": round(wall, 1),
        "vocabulary_reused": bool(args.vocabulary),
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "samples": [s["prompt"] + s["text"] for s in samples],
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    print(json.dumps({k: report[k] for k in ("metrics", "train_tokens_per_second")}, indent=2))


if __name__ == "__main__":
    main()
