#!/usr/bin/env python
"""Benchmark: the language-model recipe's default character model on tiny Shakespeare, on this CPU.

Trains ``train language-model --data ../shared/data/tinyshakespeare/train.txt
--tokenizer char`` (the recipe's defaults unless ``--set``) for at most
``--max-minutes`` of training (stopping after the epoch that crosses it; the best
weights by validation NLL are kept), exports it, then records:

- the validation curve (NLL in nats per character after each epoch, with the
  cumulative training seconds), the best validation NLL, perplexity and bits per
  character; validation is the contiguous last 10% of ``train.txt`` (no training
  window overlaps it), windows of ``sequence_length`` characters each read from
  ``[START]``, every validation character predicted once;
- the export's NLL on the same validation text through its ``score`` signature;
- training characters per second and peak resident memory (the run's metrics);
- three samples of the export (seeded; temperature 0.8, top-p 0.95).

Writes ``bench/results/lm_shakespeare_<model>.json``. Run by hand, not in CI:

    python bench/lm_shakespeare.py --max-minutes 60
    python bench/lm_shakespeare.py --model transformer --max-minutes 60
    python bench/lm_shakespeare.py --from-export /tmp/seqtasks-bench/lm-lstm/1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "tinyshakespeare", "train.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lstm")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--max-minutes", type=float, default=60.0)
    parser.add_argument("--output", default=None)
    parser.add_argument(
        "--from-export", help="skip training: measure this export version (of this benchmark)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from seqtasks.config import parse_assignments
    from seqtasks.export import read_metadata
    from seqtasks.training import TimeLimit, train
    from tasks import get_recipe

    stamp = time.strftime("%Y%m%d-%H%M%S")
    recipe = get_recipe("language-model")
    if args.from_export:  # measure an earlier run's export again (no training)
        export_path = args.from_export
        metadata = read_metadata(export_path)
        config = recipe.make_config(**{**metadata["config"], "run_dir": metadata["run_dir"]})
        wall = None
    else:
        config = recipe.make_config(
            **{
                "data": DATA,
                "model": args.model,
                "tokenizer": "char",
                "export_dir": f"/tmp/seqtasks-bench/lm-{args.model}",
                "run_dir": f"/tmp/seqtasks-bench/lm-{args.model}-{stamp}",
                **parse_assignments(args.set),
            }
        )
        start = time.perf_counter()
        result = train(recipe, config, verbose=2, callbacks=[TimeLimit(args.max_minutes)])
        wall = round(time.perf_counter() - start, 1)
        export_path = result.export_path
        metadata = read_metadata(export_path)
    metrics = {k: v for k, v in metadata["metrics"].items() if k != "samples"}
    with open(DATA, encoding="utf-8") as f:
        text = f.read()
    cut = len(text) - int(round(len(text) * config.validation_split))
    tail = f"/tmp/seqtasks-bench/shakespeare-validation-{stamp}.txt"
    with open(tail, "w", encoding="utf-8") as f:
        f.write(text[cut:])
    export_report = recipe.evaluate_export(export_path, metadata, data=tail)
    samples = recipe.generate(
        export_path, metadata, ["", "ROMEO:", "First Citizen:"], max_length=300, seed=1
    )
    seconds = metrics["seconds_per_epoch"]
    curve = read_history(config.run_dir)
    elapsed = 0.0
    for row, epoch_seconds in zip(curve, seconds):
        elapsed += epoch_seconds
        row["train_seconds"] = round(elapsed, 1)
    train_tokens = metadata["data"]["train_tokens"]
    report = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
        "export": export_path,
        "config": config.to_dict(),
        "metrics": metrics,
        "curve": curve,
        "wall_seconds": wall,
        "train_characters_per_second": round(train_tokens * len(seconds) / sum(seconds)),
        "peak_memory_mib": metrics.get("peak_rss_mb"),
        "export_validation": export_report,
        "samples": [s["prompt"] + s["text"] for s in samples],
    }
    output = args.output or os.path.join(
        ROOT, "bench", "results", f"lm_shakespeare_{config.model}.json"
    )
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    print(json.dumps({k: report[k] for k in ("metrics", "train_characters_per_second")}, indent=2))


def read_history(run_dir: str) -> list[dict]:
    """Per epoch: ``epoch``, ``loss``, ``val_loss`` (validation NLL per character), ... from
    the run's ``history.csv``."""
    import csv

    rows = []
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        for row in csv.DictReader(f):
            rows.append({k: float(v) if k != "epoch" else int(v) for k, v in row.items() if v})
    return rows


if __name__ == "__main__":
    main()
