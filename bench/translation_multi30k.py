#!/usr/bin/env python
"""Benchmark: the translation recipe on the full Multi30k En->De training set, on this CPU.

Trains one model (``--model transformer`` or ``rnn-attention``) on all 29,000
training pairs with Multi30k's ``val`` split for early stopping, exports it,
then measures in one run:

- sacreBLEU BLEU and chrF of the export (beam search inside the SavedModel,
  beam 4, length penalty 0.6) on ``val`` and ``test_2016_flickr``, and the
  export's perplexity on them;
- training seconds per epoch;
- decoding speed in sentences/s at batch 1 and batch 32 for (a) the export
  (tokenize + beam 4 + detokenize in the graph), (b) the same model greedy in
  the graph with the step cache, and (c) the same model greedy token by token
  from a Python loop that re-runs the whole decoder on the prefix every step
  (the tutorials' way).

Writes ``bench/results/translation_multi30k_<model>.json``.

    python bench/translation_multi30k.py --model transformer --max-minutes 75
    python bench/translation_multi30k.py --model rnn-attention --set cell=gru
    python bench/translation_multi30k.py --preset wu2021-multi30k --max-minutes 90

``--max-minutes`` stops training after the epoch that crosses the limit (the
best weights so far are kept); ``--threads`` caps TensorFlow's CPU threads so
two benchmarks can share a machine. ``--from-run RUN_DIR`` skips training and
measures the best checkpoint of an earlier run (``--train-log`` recovers its
seconds per epoch from the training log). Run by hand, not in CI.
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
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "multi30k")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="transformer")
    parser.add_argument("--preset", default=None, help="a preset of the recipe (tasks/presets.py)")
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0 = all)")
    parser.add_argument("--output", default=None)
    parser.add_argument(
        "--from-run",
        help="skip training: evaluate, export and time the best checkpoint of this run directory",
    )
    parser.add_argument(
        "--train-log", help="with --from-run: the training log, to recover seconds per epoch"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import keras
    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from seqtasks.config import parse_assignments
    from seqtasks.data.parallel import load_parallel
    from seqtasks.decoding import DecodingOptions
    from seqtasks.export import read_metadata
    from seqtasks.generation import Generator, TextSource
    from seqtasks.text import END_ID, START_ID
    from seqtasks.training import TimeLimit, train
    from tasks import get_recipe
    from tasks.presets import with_preset

    stamp = time.strftime("%Y%m%d-%H%M%S")
    recipe = get_recipe("translation")
    overrides = {
        "data": DATA,
        "model": args.model,
        "validation_data": "val",
        "export_dir": f"/tmp/seqtasks-bench/translation-{args.model}",
        "run_dir": f"/tmp/seqtasks-bench/translation-{args.model}-{stamp}",
        **parse_assignments(args.set),
    }
    config = recipe.make_config(**with_preset("translation", args.preset, overrides))

    start = time.perf_counter()
    if args.from_run:
        result = from_run(recipe, args.from_run, args.train_log)
        config = result.config
    else:
        result = train(recipe, config, verbose=2, callbacks=[TimeLimit(args.max_minutes)])
    wall = time.perf_counter() - start
    metadata = read_metadata(result.export_path)

    evaluations = {}
    for split in ("val", "test_2016_flickr"):
        report = recipe.evaluate_export(result.export_path, metadata, data=DATA, split=split)
        evaluations[split] = report
        print(split, report["bleu"], report["chrf"], report.get("perplexity"), flush=True)

    # --- decoding speed ---------------------------------------------------------------
    import tensorflow_text  # noqa: F401

    test = load_parallel(DATA, source_lang="en", target_lang="de", split="test_2016_flickr")
    loaded = tf.saved_model.load(result.export_path).signatures["serving_default"]
    info = result.prepared.info
    greedy = Generator(
        result.model,
        info.target_tokenizer,
        DecodingOptions(strategy="greedy"),
        config.sequence_length,
        TextSource(info.source_tokenizer),
        "translation",
    )
    model = result.model

    def python_greedy(texts):
        """The tutorials' loop: re-run the decoder on the whole prefix for every new token."""
        source = greedy.source.encode(tf.constant(texts))
        tokens = np.full((len(texts), 1), START_ID, np.int32)
        done = np.zeros(len(texts), bool)
        for _ in range(config.sequence_length - 1):
            logits = model(
                {"encoder_token_ids": source, "decoder_token_ids": tokens}, training=False
            )
            nxt = np.argmax(np.asarray(logits[:, -1, :]), axis=-1).astype(np.int32)
            tokens = np.concatenate([tokens, nxt[:, None]], axis=1)
            done |= nxt == END_ID
            if done.all():
                break
        return info.target_tokenizer.detokenize(tf.constant(tokens)).numpy()

    runners = {
        "export_beam4": lambda batch: loaded(text=tf.constant(batch))["translation"].numpy(),
        "graph_greedy_cached": lambda batch: greedy.serving_function(tf.constant(batch))[
            "translation"
        ].numpy(),
        "python_greedy_uncached": python_greedy,
    }
    speed = {}
    for name, run in runners.items():
        run(test.sources[:2])  # trace / warm up
        run(test.sources[:32])
        for batch_size, count in ((1, 64), (32, 320)):
            texts = test.sources[:count]
            t0 = time.perf_counter()
            for i in range(0, count, batch_size):
                run(texts[i : i + batch_size])
            seconds = time.perf_counter() - t0
            speed[f"{name}_batch{batch_size}_sentences_per_second"] = round(count / seconds, 2)
        print(name, {k: v for k, v in speed.items() if k.startswith(name)}, flush=True)

    out = {
        "command": "python bench/" + os.path.basename(__file__) + " " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}, "
        f"threads={args.threads or 'all'}, no GPU, KERAS_BACKEND={keras.backend.backend()}",
        "config": config.to_dict(),
        "train_metrics": result.metrics,
        "wall_seconds": round(wall, 1),
        "evaluation": evaluations,
        "decoding_speed": speed,
        "export": result.export_path,
    }
    path = args.output or os.path.join(
        ROOT, "bench", "results", f"translation_multi30k_{args.preset or args.model}.json"
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=2, default=str)
    print(json.dumps({k: out[k] for k in ("wall_seconds", "decoding_speed")}, indent=2))
    for split, report in evaluations.items():
        print(f"{split}: BLEU {report['bleu']}  chrF {report['chrf']}")


def from_run(recipe, run_dir: str, train_log: str | None):
    """Rebuild a finished run from its directory: config, vocabularies, best checkpoint."""
    import re

    from seqtasks.training import TrainResult
    from tasks.translation import TranslationConfig

    with open(os.path.join(run_dir, "config.json")) as f:
        saved = json.load(f)
    config = TranslationConfig.from_dict(saved["config"])
    data = recipe.load_data(config)
    prepared = recipe.prepare(config, data, run_dir)  # reuses the run's vocabulary files
    model = recipe.build_model(config, prepared)
    model.load_weights(os.path.join(run_dir, "best.weights.h5"))
    recipe.compile_model(model, config)
    metrics = recipe.evaluate(model, prepared, config)
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = f.read().strip().splitlines()[1:]
    header = open(os.path.join(run_dir, "history.csv")).readline().strip().split(",")
    val_losses = [float(r.split(",")[header.index("val_loss")]) for r in rows]
    metrics["epochs_run"] = len(rows)
    metrics["best_epoch"] = 1 + min(range(len(val_losses)), key=val_losses.__getitem__)
    if train_log:
        text = open(train_log).read()
        metrics["seconds_per_epoch"] = [
            int(s) for s in re.findall(r"^\d+/\d+ - (\d+)s", text, re.M)
        ]
        metrics["train_seconds"] = sum(metrics["seconds_per_epoch"])
    export_path = recipe.export(
        model,
        prepared,
        config,
        {"metrics": metrics, "run_dir": os.path.abspath(run_dir), "data": saved.get("data", {})},
    )
    return TrainResult(run_dir, export_path, metrics, model, prepared, config)


if __name__ == "__main__":
    main()
