#!/usr/bin/env python
"""Benchmark: decoding speed of translation exports side by side (issue 20).

Loads each export's ``serving_default`` (tokenize, decode with the export's baked-in
strategy, detokenize, in the graph) and times it on the same Multi30k
``test_2016_flickr`` English sources: batch 1 over the first 64 sentences and batch 32
over the first 320. The exports are timed in turns within each round (export A, B, A,
B, ...), so load on this shared machine falls on all of them alike; the figure is the
median over ``--rounds``. Also reported: mean words per output and the share of outputs
that hit the length limit (a model that rarely emits ``[END]`` decodes slowly whatever
the code), so exports trained by different code can be compared fairly.

    python bench/decoding_speed.py --export round1=/tmp/old/1 --export head=/tmp/new/1

Writes ``bench/results/decoding_speed.json``; ratios are to the first export.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "multi30k")
SETTINGS = ((1, 64), (32, 320))  # (batch size, sentences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", action="append", required=True, help="NAME=VERSION_DIR")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="TF intra/inter-op threads (0: TF's)")
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "decoding_speed.json")
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the exports' tokenizer ops)

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    with gzip.open(os.path.join(DATA, "test_2016_flickr.en.gz"), "rt", encoding="utf-8") as f:
        sources = [line.strip() for line in f][:320]
    exports = dict(item.split("=", 1) for item in args.export)
    serve = {}
    for name, path in exports.items():
        signature = tf.saved_model.load(path).signatures["serving_default"]
        serve[name] = lambda batch, s=signature: s(text=tf.constant(batch))["translation"].numpy()
        serve[name](sources[:2])  # trace / warm up
        serve[name](sources[:32])

    seconds = {name: {batch: [] for batch, _ in SETTINGS} for name in exports}
    outputs = {}
    for r in range(args.rounds):
        for batch, count in SETTINGS:
            for name, run in serve.items():
                t0 = time.perf_counter()
                decoded = [run(sources[i : i + batch]) for i in range(0, count, batch)]
                seconds[name][batch].append(time.perf_counter() - t0)
                if batch == 32:
                    outputs[name] = [t.decode() for part in decoded for t in part]
        print(f"round {r + 1}/{args.rounds}", flush=True)

    first = next(iter(exports))
    results = {}
    for name in exports:
        words = [len(t.split()) for t in outputs[name]]
        rates = {
            f"batch{b}_sentences_per_second": round(c / statistics.median(seconds[name][b]), 2)
            for b, c in SETTINGS
        }
        results[name] = {
            "export": exports[name],
            **rates,
            "all_seconds": {f"batch{b}": [round(s, 2) for s in v] for b, v in seconds[name].items()},
            "mean_words_per_output": round(sum(words) / len(words), 2),
            "outputs_of_60_words_or_more": sum(w >= 60 for w in words),
        }
    for name in exports:
        for b, _ in SETTINGS:
            key = f"batch{b}_sentences_per_second"
            results[name][f"batch{b}_ratio_to_{first}"] = round(
                results[name][key] / results[first][key], 2
            )
    out = {
        "command": "python bench/decoding_speed.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}, no GPU",
        "sentences": "Multi30k test_2016_flickr English sources: batch 1 over the first 64, "
        "batch 32 over the first 320; median of the rounds, exports timed in turns",
        "rounds": args.rounds,
        "threads": args.threads or "TensorFlow's default",
        "results": results,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    os.replace(tmp, args.output)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
