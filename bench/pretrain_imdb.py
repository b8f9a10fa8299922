#!/usr/bin/env python
"""Benchmark: pretrain a word-level LSTM language model on IMDB text the sentiment recipe's
validation never sees, then train the classifier from it (``--init-from``), issue 18.

1. The sentiment recipe's movie-grouped carve (``cli.py carve sentiment``: 10%, seed 1337)
   of the 25,000 labelled reviews; its validation reviews go to ``validation.jsonl``.
2. ``cli.py train language-model`` on the 50,000 unlabelled and 25,000 labelled reviews
   (in a seeded order) with ``--set exclude_texts=validation.jsonl`` (every document equal to
   a validation review is left out), word tokenizer, lower-cased, one LSTM layer;
   ``--max-examples`` training windows of ``sequence_length`` tokens bound its time.
3. ``cli.py train sentiment --init-from <the language model>`` on the labelled reviews
   with the same carve, then the validation accuracy and the times of both steps.

    python bench/pretrain_imdb.py --max-examples 12000          # about 1 hour on 2 cores
    python bench/pretrain_imdb.py --max-examples 0 --lm-epochs 3 --lm-set sampled_softmax=1024
    python bench/pretrain_imdb.py --language-model /tmp/seqtasks-bench/lm-pretrain  # step 3

Writes ``bench/results/pretrain_imdb.json``. Run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from sentiment_imdb import history_column  # bench/ is on sys.path when run as a script

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "imdb")
LABELLED = os.path.join(DATA, "aclImdb_v1_train.tar.gz")


def cli_json(*args: str, log: str) -> dict:
    """Run ``cli.py ARGS --json``; its stderr (progress, logs) goes to ``log``."""
    with open(log, "a") as err:
        out = subprocess.run(
            [sys.executable, os.path.join(ROOT, "cli.py"), *args, "--json"],
            cwd=ROOT,
            check=True,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", default="/tmp/seqtasks-bench/pretrain")
    parser.add_argument(
        "--max-examples", type=int, default=12000, help="LM training windows (0: all)"
    )
    parser.add_argument("--lm-epochs", type=int, default=1, help="language-model epochs")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--language-model", help="skip step 2: fine-tune from this export")
    parser.add_argument("--lm-set", action="append", default=[], help="language-model KEY=VALUE")
    parser.add_argument("--set", action="append", default=[], help="sentiment KEY=VALUE")
    parser.add_argument("--epochs", type=int, default=4, help="sentiment epochs at most")
    parser.add_argument(
        "--lm-only", action="store_true", help="stop after step 2 (the language model)"
    )
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "pretrain_imdb.json")
    )
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    log = os.path.join(args.work_dir, "log.txt")
    results = {
        "command": "python bench/pretrain_imdb.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    validation = os.path.join(args.work_dir, "validation.jsonl")
    results["carve"] = cli_json(
        "carve", "sentiment", "--data", LABELLED, "--seed", str(args.seed), "--output", validation,
        log=log,
    )  # fmt: skip
    lm_export = args.language_model
    lm_record = os.path.join(args.work_dir, "language_model.json")
    if lm_export and os.path.exists(lm_record):
        # The record step 2 left when it trained this export (a resumed bench run).
        with open(lm_record) as f:
            recorded = json.load(f)
        if os.path.abspath(recorded.get("export", "")) == os.path.abspath(lm_export):
            results["language_model"] = recorded
    if not lm_export:
        # The 75,000 reviews in a seeded order, so --max-examples windows sample all of them
        # (the folder lists the labelled archive's neg and pos reviews first).
        import numpy as np

        sys.path.insert(0, ROOT)
        from seqtasks.data.text_corpus import load_corpus

        texts = load_corpus(DATA, mode="documents").texts
        corpus = os.path.join(args.work_dir, "imdb_reviews_shuffled.jsonl")
        with open(corpus + ".tmp", "w", encoding="utf-8") as f:
            for i in np.random.default_rng(args.seed).permutation(len(texts)):
                f.write(json.dumps({"text": texts[i]}, ensure_ascii=False) + "\n")
        os.replace(corpus + ".tmp", corpus)
        lm_export = os.path.join(args.work_dir, "lm-export")
        lm_settings = [
            "tokenizer=word", "lowercase=true", "vocabulary_size=12000", "embedding_dim=128",
            "hidden_dim=256", "num_layers=1", "validation_split=0.01", "batch_size=64",
            f"exclude_texts={validation}", *args.lm_set,
        ]  # fmt: skip
        start = time.perf_counter()
        trained = cli_json(
            "train", "language-model", "--data", corpus, "--epochs", str(args.lm_epochs),
            *(["--max-examples", str(args.max_examples)] if args.max_examples else []),
            "--seed", str(args.seed),
            "--export-dir", lm_export, "--run-dir", os.path.join(args.work_dir, "lm-run"),
            *[x for s in lm_settings for x in ("--set", s)],
            log=log,
        )  # fmt: skip
        results["language_model"] = {
            "settings": lm_settings,
            "max_examples": args.max_examples or None,
            "epochs": args.lm_epochs,
            "wall_seconds": round(time.perf_counter() - start, 1),
            "metrics": {
                k: v for k, v in trained["metrics"].items() if not isinstance(v, (list, dict))
            },
            "data": trained.get("data"),
            "export": lm_export,
        }
        with open(lm_record, "w") as f:
            json.dump(results["language_model"], f, indent=2)
        print(json.dumps(results["language_model"]), flush=True)
    if args.lm_only:
        return
    start = time.perf_counter()
    trained = cli_json(
        "train", "sentiment", "--data", LABELLED, "--init-from", lm_export,
        "--epochs", str(args.epochs), "--seed", str(args.seed),
        "--export-dir", os.path.join(args.work_dir, "sentiment-export"),
        "--run-dir", os.path.join(args.work_dir, "sentiment-run"),
        *[x for s in args.set for x in ("--set", s)],
        log=log,
    )  # fmt: skip
    metrics = trained["metrics"]
    results["classifier"] = {
        "init_from": lm_export,
        "settings": args.set,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "val_accuracy": metrics.get("val_accuracy"),
        "val_loss": metrics.get("val_loss"),
        "best_epoch": metrics.get("best_epoch"),
        "epochs_run": metrics.get("epochs_run"),
        "seconds_per_epoch": metrics.get("seconds_per_epoch"),
        "history_val_accuracy": history_column(
            os.path.join(args.work_dir, "sentiment-run"), "val_accuracy"
        ),
    }
    print(json.dumps(results["classifier"]), flush=True)
    with open(args.output + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()
