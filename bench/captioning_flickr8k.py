#!/usr/bin/env python
"""Benchmark: the captioning recipe on Flickr8k train (6,000 images x 5 captions), on this CPU.

Trains one model (default: the recipe's defaults, ``--model attention``) on
the ``train`` split with a seeded 10% of its images carved off for early
stopping, exports it, then measures in one run:

- feature caching: seconds to run the frozen MobileNetV2 over the images
  (with an empty cache, so it is measured), and seconds to load them back
  from the cache;
- training seconds per epoch;
- corpus BLEU-1..4 and CIDEr-D of the export (JPEG bytes in; decoding,
  resizing, CNN, beam search 3 and detokenization inside the SavedModel) on
  the 1,000 ``dev`` images against their 5 references;
- export latency per image at batch 1 and batch 32 (median of repeated calls).

With ``--decode-grid``, the decoding settings baked into the export (beam size,
length penalty, no-repeat n-gram size) are chosen first, on the validation images
carved from train (never on dev): every combination of the grid decodes them, the
one with the highest corpus BLEU-4 is exported, and dev is measured with that export
only (the grid's validation scores are in the JSON).

Writes ``bench/results/captioning_flickr8k_<model>.json``.

    KERAS_HOME=../shared/keras_home python bench/captioning_flickr8k.py --max-minutes 60
    KERAS_HOME=../shared/keras_home python bench/captioning_flickr8k.py --model lstm

``--from-run RUN_DIR`` skips training and measures the best checkpoint of an
earlier run. Run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "flickr8k")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="attention")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--output", default=None)
    parser.add_argument("--from-run", help="skip training: measure this run's best checkpoint")
    parser.add_argument(
        "--decode-grid",
        action="store_true",
        help="choose beam size, length penalty and no-repeat n-gram size on the validation "
        "images (BLEU-4), then export with the best",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import numpy as np
    import tensorflow as tf

    from seqtasks.config import parse_assignments
    from seqtasks.export import read_metadata
    from seqtasks.training import TimeLimit, train
    from tasks import get_recipe

    stamp = time.strftime("%Y%m%d-%H%M%S")
    recipe = get_recipe("captioning")
    cache = tempfile.mkdtemp(prefix="seqtasks-feature-cache-")
    overrides = {
        "data": DATA,
        "model": args.model,
        "feature_cache": cache,
        "export_dir": f"/tmp/seqtasks-bench/captioning-{args.model}",
        "run_dir": args.from_run or f"/tmp/seqtasks-bench/captioning-{args.model}-{stamp}",
        **parse_assignments(args.set),
    }
    config = recipe.make_config(**overrides)

    start = time.perf_counter()
    if args.from_run:
        result = from_run(recipe, config)
    else:
        result = train(recipe, config, verbose=2, callbacks=[TimeLimit(args.max_minutes)])
    wall = time.perf_counter() - start
    grid = None
    if args.decode_grid:
        grid, config = decode_grid(recipe, result)
        path = recipe.export(
            result.model,
            result.prepared,
            config,
            {"metrics": result.metrics, "run_dir": config.run_dir, "decode_grid": grid},
        )
        result = dataclasses.replace(result, export_path=path, config=config)
    metadata = read_metadata(result.export_path)

    # Feature caching: the first pass (above) encoded the images; a second load hits the cache.
    data = recipe.load_data(config)
    start = time.perf_counter()
    again = recipe.prepare(config, data, tempfile.mkdtemp(prefix="seqtasks-bench-run-"))
    cached_prepare = time.perf_counter() - start  # includes learning the vocabulary again

    report = recipe.evaluate_export(result.export_path, metadata, data=DATA, split="dev")
    print(
        "dev",
        {k: round(report[k], 2) for k in ("bleu_1", "bleu_2", "bleu_3", "bleu_4")},
        report.get("cider_d"),
        flush=True,
    )

    # --- export latency -----------------------------------------------------------------
    import tensorflow_text  # noqa: F401

    dev = recipe.load_data(recipe.make_config(data=DATA, split="dev"))
    images = dev.images.read_many(dev.ids[:64])
    loaded = tf.saved_model.load(result.export_path).signatures["serving_default"]
    latency = {}
    for batch in (1, 32):
        loaded(image_bytes=tf.constant(images[:batch]))  # warm-up
        times = []
        for i in range(8 if batch == 1 else 3):
            chunk = images[i * batch % 32 : i * batch % 32 + batch]
            t0 = time.perf_counter()
            loaded(image_bytes=tf.constant(chunk))["caption"].numpy()
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        latency[f"batch_{batch}"] = {
            "seconds_per_call": round(median, 4),
            "ms_per_image": round(1000 * median / batch, 1),
        }
    print("latency", latency, flush=True)

    out = {
        "command": "KERAS_HOME=../shared/keras_home python bench/captioning_flickr8k.py "
        + " ".join(sys.argv[1:]),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "gpu": bool(tf.config.list_physical_devices("GPU")),
        },
        "config": config.to_dict(),
        "wall_seconds": round(wall, 1),
        "training": {
            k: result.metrics.get(k)
            for k in ("epochs_run", "best_epoch", "seconds_per_epoch", "train_seconds")
        },
        "validation": {
            k: v for k, v in result.metrics.items() if k.startswith("val_") or k == "examples"
        },
        "feature_encoding": result.prepared.metadata.get("feature_encoding"),
        "prepare_seconds_with_cache": round(cached_prepare, 1),
        "feature_encoding_cached": again.metadata.get("feature_encoding"),
        "decode_grid": grid,
        "dev": report,
        "export_latency": latency,
        "peak_rss_mb": result.metrics.get("peak_rss_mb"),
        "export": result.export_path,
    }
    path = args.output or os.path.join(
        ROOT, "bench", "results", f"captioning_flickr8k_{args.model}.json"
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=2, default=str)
    print("wrote", path)
    _ = np  # numpy is imported for TensorFlow's sake


GRID = [
    (beam, alpha, ngram)
    for beam in (1, 3, 5)
    for alpha in ((0.0,) if beam == 1 else (0.0, 0.6, 1.0))
    for ngram in (0, 2, 3)
]


def decode_grid(recipe, result):
    """Decode the validation images with every (beam size, length penalty, no-repeat
    n-gram size) of ``GRID``; return the table and the config of the best BLEU-4."""
    import numpy as np

    from seqtasks.caption_metrics import caption_scores
    from tasks.captioning.serving import make_generator

    info = result.prepared.info
    inputs = info.validation_inputs
    shape = None if isinstance(inputs, list) else tuple(np.shape(inputs)[1:])
    rows = []
    for beam, alpha, ngram in GRID:
        config = _decoding(result.config, beam, alpha, ngram)
        generator = make_generator(result.model, info, config, feature_shape=shape)
        t0 = time.perf_counter()
        captions, _ = generator.generate_all(inputs, batch_size=32)
        scores = caption_scores(captions, info.validation_data.captions)
        row = {
            "beam_size": beam,
            "length_penalty": alpha,
            "no_repeat_ngram_size": ngram,
            "val_bleu_4": round(scores["bleu_4"], 2),
            "val_cider_d": scores.get("cider_d"),
            "mean_words": round(float(np.mean([len(c.split()) for c in captions])), 2),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print("grid", row, flush=True)
        rows.append(row)
    best = max(rows, key=lambda r: r["val_bleu_4"])
    print("grid best", best, flush=True)
    chosen = _decoding(
        result.config, best["beam_size"], best["length_penalty"], best["no_repeat_ngram_size"]
    )
    return {"rows": rows, "chosen": best}, chosen


def _decoding(config, beam: int, alpha: float, ngram: int):
    """``config`` decoding with beam size ``beam`` (1: greedy), length penalty ``alpha``
    and no-repeat n-gram size ``ngram``."""
    return dataclasses.replace(
        config,
        decoding="beam" if beam > 1 else "greedy",
        beam_size=beam,
        length_penalty=alpha,
        no_repeat_ngram_size=ngram,
    )


def from_run(recipe, config):
    """Rebuild a finished run's model from its best checkpoint and export it."""
    from seqtasks.training import TrainResult

    data = recipe.load_data(config)
    prepared = recipe.prepare(config, data, config.run_dir)
    model = recipe.build_model(config, prepared)
    recipe.compile_model(model, config)
    model.load_weights(os.path.join(config.run_dir, "best.weights.h5"))
    metrics = recipe.evaluate(model, prepared, config)
    path = recipe.export(model, prepared, config, {"metrics": metrics, "run_dir": config.run_dir})
    return TrainResult(config.run_dir, path, metrics, model, prepared, config)


if __name__ == "__main__":
    main()
