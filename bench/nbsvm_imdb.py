#!/usr/bin/env python
"""Benchmark reference: NBSVM on word uni+bigrams (Wang & Manning 2012) on IMDB.

The strong cheap baseline of issue 18, on the sentiment recipe's own validation carves
(``seqtasks.data.pipeline.split_indices``, 10%, seed 1337): the movie-grouped carve (the
recipe's default since issue 18) and the random carve by review (the default before).

NBSVM (Wang & Manning 2012, "Baselines and Bigrams", sec. 2.3): binarized n-gram
features x, the naive Bayes log-count ratio r = log((p / |p|_1) / (q / |q|_1)) with
p = alpha + sum of x over positive reviews, q the same over negative ones (alpha = 1); a
linear SVM (L2-regularised, squared hinge loss, C) on r * x, whose weights are then
interpolated with their mean magnitude: w' = (1 - beta) * mean(|w|) + beta * w
(beta = 0.25). The paper reports 91.22% on the IMDB test set with uni+bigrams.

    python bench/nbsvm_imdb.py                 # both carves; ~2 minutes on 2 cores
    python bench/nbsvm_imdb.py --carve grouped

Needs scikit-learn (bench/requirements.txt), not a dependency of seqtasks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
IMDB = os.path.join(os.path.dirname(ROOT), "shared", "data", "imdb", "aclImdb_v1_train.tar.gz")


def nbsvm(train_texts, train_y, val_texts, val_y, *, c: float, beta: float, alpha: float):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.svm import LinearSVC

    def clean(text: str) -> str:
        return re.sub(r"<br\s*/?>", " ", text)

    vectorizer = CountVectorizer(
        preprocessor=lambda t: clean(t).lower(),
        token_pattern=r"(?u)\b\w[\w']*\b|[!?]",
        ngram_range=(1, 2),
        binary=True,
        dtype=np.float32,
    )
    x_train = vectorizer.fit_transform(train_texts)
    x_val = vectorizer.transform(val_texts)
    y = np.asarray(train_y)
    p = alpha + np.asarray(x_train[y == 1].sum(0)).ravel()
    q = alpha + np.asarray(x_train[y == 0].sum(0)).ravel()
    r = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
    svm = LinearSVC(C=c, loss="squared_hinge", max_iter=10_000)
    svm.fit(x_train.multiply(r).tocsr(), y)
    w = svm.coef_.ravel()
    w = (1 - beta) * np.abs(w).mean() + beta * w
    scores = x_val.multiply(r).tocsr() @ w + svm.intercept_[0]
    accuracy = float(((scores > 0).astype(int) == np.asarray(val_y)).mean())
    return accuracy, x_train.shape[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carve", choices=("grouped", "random", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--validation-split", type=float, default=0.1)
    parser.add_argument("--c", type=float, default=1.0, help="SVM C (the paper's 1)")
    parser.add_argument("--beta", type=float, default=0.25, help="interpolation (the paper's)")
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "nbsvm_imdb.json")
    )
    args = parser.parse_args()

    from seqtasks.data.classification import load_text_classification
    from seqtasks.data.pipeline import split_indices

    data = load_text_classification(IMDB)
    labels = np.array([int(label == "pos") for label in data.labels])
    results = {
        "command": "python bench/nbsvm_imdb.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "method": f"NBSVM uni+bigrams (Wang & Manning 2012), C={args.c:g}, beta={args.beta:g}",
        "carves": {},
    }
    for carve in ("grouped", "random") if args.carve == "both" else (args.carve,):
        groups = data.groups if carve == "grouped" else None
        tr, va = split_indices(len(data), args.validation_split, args.seed, groups=groups)
        start = time.perf_counter()
        accuracy, features = nbsvm(
            [data.texts[i] for i in tr],
            labels[tr],
            [data.texts[i] for i in va],
            labels[va],
            c=args.c,
            beta=args.beta,
            alpha=1.0,
        )
        seconds = round(time.perf_counter() - start, 1)
        results["carves"][carve] = {
            "train": len(tr),
            "validation": len(va),
            "features": features,
            "validation_accuracy": round(accuracy, 4),
            "seconds": seconds,
        }
        print(f"{carve}: validation accuracy {accuracy:.4f} ({len(va)} reviews, {seconds} s)")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()
