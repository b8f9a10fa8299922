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
   recipe's own grouped 10% carve of those N), for each of ``--inits``: from scratch
   (``none``), with ``--init-embeddings PATH`` (``word2vec_unlabelled``), and from a
   language model (``language_model``: ``--init-from --language-model``, concat pooling;
   pretrain it with ``bench/pretrain_imdb.py``, which excludes this same validation carve),
   and from it with ULMFiT's schedule (``language_model_ulmfit``: :data:`ULMFIT`, for
   ``--ulmfit-epochs``, default 10).
4. ``--full INIT=RESULT.json`` adds the full pool's figure (22,495 reviews) of a
   ``bench/sentiment_imdb.py`` or ``bench/pretrain_imdb.py`` result on the same carve.
   Runs already in ``--output`` are kept unless this invocation reruns them.

    python bench/low_data_imdb.py                       # sizes 100, 500, 2000; ~45 min
    python bench/low_data_imdb.py --sizes 100 500 --vectors /tmp/imdb_unsup_w2v.txt
    python bench/low_data_imdb.py --inits language_model \
        --language-model /tmp/seqtasks-bench/pretrain/lm-export \
        --full none=bench/results/sentiment_imdb_i18_grouped_scratch.json

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


INITS = ("none", "word2vec_unlabelled", "language_model", "language_model_ulmfit")
LABELS = {
    "none": "from scratch",
    "word2vec_unlabelled": "word2vec init",
    "language_model": "language-model init",
    "language_model_ulmfit": "language-model init, ULMFiT schedule",
}
# ULMFiT's fine-tuning (Howard & Ruder 2018, sec. 3.2-3.3): discriminative rates (2.6 per
# layer group), slanted triangular rates peaking at 0.01, gradual unfreezing by epoch.
ULMFIT = (
    "pooling=concat", "gradual_unfreezing=true", "layer_lr_decay=2.6",
    "lr_schedule=slanted_triangular", "learning_rate=0.01",
)  # fmt: skip


def full_pool_run(spec: str, pool: int) -> dict:
    """``INIT=RESULT.json`` -> the run record of a full-pool bench result on this carve."""
    init, _, path = spec.partition("=")
    if init not in INITS or not path:
        raise SystemExit(f"--full {spec}: expected INIT=RESULT.json with INIT one of {INITS}")
    with open(path) as f:
        result = json.load(f)
    if "imdb_validation" in result:  # bench/sentiment_imdb.py
        accuracy, epochs = result["imdb_validation"]["val_accuracy"], result["epochs_run"]
        seconds = result["train_seconds"]
    else:  # bench/pretrain_imdb.py
        accuracy, epochs = result["classifier"]["val_accuracy"], result["classifier"]["epochs_run"]
        seconds = result["classifier"]["wall_seconds"]
    return {
        "labelled_reviews": pool,
        "init": init,
        "validation_accuracy": round(accuracy, 4),
        "epochs_run": epochs,
        "train_seconds": seconds,
        "source": os.path.relpath(path, ROOT),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 500, 2000])
    parser.add_argument("--vectors", default="/tmp/seqtasks-bench/imdb_unsup_word2vec.txt")
    parser.add_argument("--work-dir", default="/tmp/seqtasks-bench/low-data")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--algorithm", choices=("cbow", "skipgram"), default="cbow")
    parser.add_argument(
        "--inits", nargs="+", choices=INITS, default=["none", "word2vec_unlabelled"]
    )
    parser.add_argument("--language-model", help="language-model export for --inits language_model")
    parser.add_argument("--full", action="append", default=[], help="INIT=RESULT.json")
    parser.add_argument(
        "--ulmfit-epochs",
        type=int,
        default=10,
        help="epochs of language_model_ulmfit runs (the slanted triangular rate spans them)",
    )
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
    if {"language_model", "language_model_ulmfit"} & set(args.inits) and not args.language_model:
        raise SystemExit("--inits language_model(_ulmfit) needs --language-model EXPORT")
    previous, earlier_commands = [], []
    if os.path.exists(args.output):
        with open(args.output) as f:
            earlier = json.load(f)
        previous = earlier["runs"]
        earlier_commands = earlier.get("earlier_commands", []) + [earlier["command"]]
    results = {
        "command": "python bench/low_data_imdb.py " + " ".join(sys.argv[1:]),
        "earlier_commands": earlier_commands,  # of the runs kept from the previous file
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "validation": {"reviews": len(val), "movies": len({data.groups[i] for i in val})},
        "runs": [],
    }
    if "word2vec_unlabelled" in args.inits and not os.path.exists(args.vectors):
        os.makedirs(os.path.dirname(args.vectors), exist_ok=True)
        results["vectors_seconds"] = unlabelled_vectors(
            args.vectors, 128, args.seed, args.algorithm
        )
    elif previous and "vectors_seconds" in earlier:  # the vectors of the kept runs
        results["vectors_seconds"] = earlier["vectors_seconds"]
    results["vectors"] = {"path": args.vectors, "algorithm": args.algorithm}
    order = np.random.default_rng(args.seed).permutation(pool)
    for size in args.sizes:
        chosen = order[:size]
        train_csv = write_csv(
            os.path.join(args.work_dir, f"train_{size}.csv"),
            ([data.texts[i], data.labels[i], data.groups[i]] for i in chosen),
        )
        for init in args.inits:
            name = f"{size}-{init}"
            extra = {
                "none": ["--init-embeddings", "none"],
                "word2vec_unlabelled": ["--init-embeddings", args.vectors],
                "language_model": ["--init-from", args.language_model, "--set", "pooling=concat"],
                "language_model_ulmfit": [
                    "--init-from", args.language_model, *[a for f in ULMFIT for a in ("--set", f)]
                ],
            }[init]  # fmt: skip
            epochs = args.ulmfit_epochs if init == "language_model_ulmfit" else 30
            start = time.perf_counter()
            trained = cli_json(
                "train", "sentiment", "--data", train_csv, "--epochs", str(epochs),
                "--set", "patience=4",
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
                **({"settings": list(ULMFIT)} if init == "language_model_ulmfit" else {}),
            }
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
    results["runs"] += [full_pool_run(spec, len(pool)) for spec in args.full]
    done = {(r["labelled_reviews"], r["init"]) for r in results["runs"]}
    kept = [r for r in previous if (r["labelled_reviews"], r["init"]) not in done]
    results["runs"] = sorted(
        kept + results["runs"], key=lambda r: (r["init"], r["labelled_reviews"])
    )
    with open(args.output + ".tmp", "w") as f:
        json.dump(results, f, indent=2)
    os.replace(args.output + ".tmp", args.output)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for init, label in LABELS.items():
        runs = [r for r in results["runs"] if r["init"] == init]
        if not runs:
            continue
        ax.plot(
            [r["labelled_reviews"] for r in runs],
            [100 * (1 - r["validation_accuracy"]) for r in runs],
            marker="o",
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel("labelled training reviews")
    ax.set_ylabel("validation error (%), 2,505 reviews of unseen movies")
    with_lm = any(r["init"] == "language_model" for r in results["runs"])
    ax.set_title(
        "IMDB sentiment (bilstm; language-model init: its own lstm)"
        if with_lm
        else "IMDB sentiment, default bilstm"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)


if __name__ == "__main__":
    main()
