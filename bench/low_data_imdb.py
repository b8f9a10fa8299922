#!/usr/bin/env python
"""Benchmark: the sentiment recipe with few labelled IMDB reviews, with and without
word vectors pretrained on IMDB's 50,000 unlabelled reviews (issue 18's low-data curve;
the shape to compare is ULMFiT's figure 3, Howard & Ruder 2018).

1. The recipe's movie-grouped carve (10%, seed 1337) splits the 25,000 labelled reviews
   into a training pool (22,495) and a fixed validation set (2,505 reviews of 355 movies
   the pool never has). Every model is scored on that same validation set with
   ``cli.py evaluate``.
2. Word vectors: word2vec (``--algorithm``, CBOW by default as in the recipe; 5 epochs,
   ``embedding_dim`` 128, 2 threads) learned from the unlabelled reviews only, so they never read a labelled review: ``--vectors PATH`` reuses
   a file, else they are learned once and written there.
3. For each size N: the first N reviews of a seeded permutation of the pool (a CSV with
   the movie as group column), trained with ``--epochs 30 --set patience=4`` (early stopping on the
   recipe's own grouped 10% carve of those N), from scratch and with
   ``--init-embeddings PATH``.

    python bench/low_data_imdb.py                       # sizes 100, 500, 2000; ~25 min
    python bench/low_data_imdb.py --sizes 100 500 --vectors /tmp/imdb_unsup_w2v.txt

Writes ``bench/results/low_data_imdb.json`` and ``bench/low_data_imdb.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "imdb")


def cli_json(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "cli.py"), *args, "--json"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(out.stdout)


def write_csv(path: str, rows) -> str:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label", "movie"])
        writer.writerows(rows)
    return path


def unlabelled_vectors(path: str, dim: int, seed: int, algorithm: str) -> float:
    """Learn word2vec vectors from the unlabelled reviews into ``path``; return seconds."""
    from seqtasks.data.text_corpus import load_corpus
    from seqtasks.embeddings import train_word2vec, write_corpus

    start = time.perf_counter()
    corpus = load_corpus(os.path.join(DATA, "aclImdb_v1_unsup.tar.gz"))
    corpus_file = path + ".corpus"
    write_corpus(corpus.texts, corpus_file)
    vectors = train_word2vec(
        corpus_file, vector_size=dim, seed=seed, workers=2, algorithm=algorithm
    )
    os.remove(corpus_file)
    vectors.save_word2vec_format(path + ".tmp")
    os.replace(path + ".tmp", path)
    return round(time.perf_counter() - start, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--vectors", default="/tmp/seqtasks-bench/imdb_unsup_word2vec.txt")
    parser.add_argument("--work-dir", default="/tmp/seqtasks-bench/low-data")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--algorithm", choices=("cbow", "skipgram"), default="cbow")
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "low_data_imdb.json")
    )
    parser.add_argument("--plot", default=os.path.join(ROOT, "bench", "low_data_imdb.png"))
    args = parser.parse_args()

    from seqtasks.data.classification import load_text_classification
    from seqtasks.data.pipeline import split_indices

    os.makedirs(args.work_dir, exist_ok=True)
    data = load_text_classification(os.path.join(DATA, "aclImdb_v1_train.tar.gz"))
    pool, val = split_indices(len(data), 0.1, args.seed, groups=data.groups)
    val_csv = write_csv(
        os.path.join(args.work_dir, "validation.csv"),
        ([data.texts[i], data.labels[i], data.groups[i]] for i in val),
    )
    results = {
        "command": "python bench/low_data_imdb.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "validation": {"reviews": len(val), "movies": len({data.groups[i] for i in val})},
        "runs": [],
    }
    if not os.path.exists(args.vectors):
        os.makedirs(os.path.dirname(args.vectors), exist_ok=True)
        results["vectors_seconds"] = unlabelled_vectors(
            args.vectors, 128, args.seed, args.algorithm
        )
    results["vectors"] = {"path": args.vectors, "algorithm": args.algorithm}
    order = np.random.default_rng(args.seed).permutation(pool)
    for size in args.sizes:
        chosen = order[:size]
        train_csv = write_csv(
            os.path.join(args.work_dir, f"train_{size}.csv"),
            ([data.texts[i], data.labels[i], data.groups[i]] for i in chosen),
        )
        for init in ("none", "word2vec_unlabelled"):
            name = f"{size}-{init}"
            extra = ["--init-embeddings", args.vectors if init != "none" else "none"]
            start = time.perf_counter()
            trained = cli_json(
                "train", "sentiment", "--data", train_csv, "--epochs", "30", "--set", "patience=4",
                "--set", "group_column=movie", "--seed", str(args.seed),
                "--export-dir", os.path.join(args.work_dir, "export", name),
                "--run-dir", os.path.join(args.work_dir, "run", name), *extra,
            )  # fmt: skip
            seconds = round(time.perf_counter() - start, 1)
            report = cli_json("evaluate", trained["export"], "--data", val_csv)
            run = {
                "labelled_reviews": size,
                "init": init,
                "validation_accuracy": round(report["accuracy"], 4),
                "epochs_run": trained["metrics"]["epochs_run"],
                "train_seconds": seconds,
            }
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
    with open(args.output + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(args.output + ".tmp", args.output)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for init, label in (("none", "from scratch"), ("word2vec_unlabelled", "word2vec init")):
        runs = [r for r in results["runs"] if r["init"] == init]
        ax.plot(
            [r["labelled_reviews"] for r in runs],
            [100 * (1 - r["validation_accuracy"]) for r in runs],
            marker="o",
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel("labelled training reviews")
    ax.set_ylabel("validation error (%), 2,505 reviews of unseen movies")
    ax.set_title("IMDB sentiment, default bilstm")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)


if __name__ == "__main__":
    main()
