#!/usr/bin/env python
"""Benchmark: how much a random validation carve of IMDB flatters a model (issue 18).

Scores a sentiment export trained with the random carve by review
(``python bench/sentiment_imdb.py --set grouped_validation=false``) on its own validation
reviews, split by whether the review's movie also has reviews in that run's training
split (the movies come from aclImdb's ``urls_*.txt``).

    python bench/validation_leak_imdb.py /tmp/seqtasks-bench/sentiment/1 [--seed 1337]

Prints one JSON object and writes it to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
IMDB = os.path.join(os.path.dirname(ROOT), "shared", "data", "imdb", "aclImdb_v1_train.tar.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="a version folder of a random-carve sentiment export")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--validation-split", type=float, default=0.1)
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "validation_leak_imdb.json")
    )
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (WordPiece ops, if the export has any)

    from seqtasks.data.classification import load_text_classification
    from seqtasks.data.pipeline import split_indices

    data = load_text_classification(IMDB)
    train, val = split_indices(len(data), args.validation_split, args.seed)
    train_movies = {data.groups[i] for i in train}
    serve = tf.saved_model.load(args.export).signatures["serving_default"]
    texts = [data.texts[i] for i in val]
    predicted = []
    for start in range(0, len(texts), 64):
        out = serve(text=tf.constant(texts[start : start + 64]))
        predicted += [label.decode() for label in out["label"].numpy()]
    right = np.array([p == data.labels[i] for p, i in zip(predicted, val)])
    seen = np.array([data.groups[i] in train_movies for i in val])
    result = {
        "command": "python bench/validation_leak_imdb.py " + " ".join(sys.argv[1:]),
        "validation_reviews": len(val),
        "accuracy": round(float(right.mean()), 4),
        "movie_in_training": int(seen.sum()),
        "accuracy_movie_in_training": round(float(right[seen].mean()), 4),
        "movie_not_in_training": int((~seen).sum()),
        "accuracy_movie_not_in_training": round(float(right[~seen].mean()), 4),
    }
    print(json.dumps(result))
    with open(args.output + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(args.output + ".tmp", args.output)


if __name__ == "__main__":
    main()
