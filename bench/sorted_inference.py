#!/usr/bin/env python
"""Batch inference of a sentiment SavedModel: texts in input order against sorted by length.

Trains a sentiment export with the recipe's defaults (bilstm, ``sequence_length``
1,000) on ``--train`` IMDB reviews for one epoch (the weights do not matter for
timing), then runs :func:`seqtasks.inference.call_in_batches` over ``--texts`` other
IMDB reviews, 64 per call, without and with ``sort_key=len``, alternating, and
reports the median seconds of ``--repeats`` passes and the tokens computed
(padding included) of each.

    python bench/sorted_inference.py --repeats 3 --json

Run by hand, never in CI. Writes ``bench/results/sorted_inference.json`` with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
IMDB = os.path.join(os.path.dirname(ROOT), "shared", "data", "imdb", "aclImdb_v1_train.tar.gz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, ROOT)
    import numpy as np

    import tasks
    from seqtasks.data.classification import load_text_classification
    from seqtasks.inference import call_in_batches, load_serving_fn
    from seqtasks.training import train

    recipe = tasks.get_recipe("sentiment")
    texts = load_text_classification(IMDB, max_examples=args.train + args.texts).texts
    texts = texts[args.train :]
    with tempfile.TemporaryDirectory(prefix="sorted-inference-") as tmp:
        config = recipe.make_config(
            data=IMDB,
            max_examples=args.train,
            epochs=1,
            export_dir=os.path.join(tmp, "export"),
            run_dir=os.path.join(tmp, "run"),
        )
        result = train(recipe, config, verbose=0)
        fn = load_serving_fn(result.export_path)
        vectorizer = result.prepared.info.vectorizer
        lengths = vectorizer(np.array(texts)).row_lengths().numpy()
        call_in_batches(fn, "text", texts[:64])  # warm-up (tracing)
        seconds = {"input_order": [], "sorted": []}
        outputs = {}
        for _ in range(args.repeats):
            for name, key in (("input_order", None), ("sorted", len)):
                start = time.perf_counter()
                outputs[name] = call_in_batches(fn, "text", texts, sort_key=key)
                seconds[name].append(round(time.perf_counter() - start, 3))
    np.testing.assert_allclose(
        outputs["sorted"]["probabilities"], outputs["input_order"]["probabilities"], atol=1e-5
    )

    def computed(order):
        return int(
            sum(
                lengths[order[i : i + 64]].max() * len(order[i : i + 64])
                for i in range(0, len(order), 64)
            )
        )

    order = np.arange(len(texts))
    by_chars = np.argsort([len(t) for t in texts], kind="stable")
    report = {
        "texts": len(texts),
        "real_tokens": int(lengths.sum()),
        "tokens_computed": {"input_order": computed(order), "sorted": computed(by_chars)},
        "seconds": seconds,
        "median_seconds": {k: statistics.median(v) for k, v in seconds.items()},
    }
    print(json.dumps(report, indent=2))
    if args.json:
        path = os.path.join(HERE, "results", "sorted_inference.json")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
