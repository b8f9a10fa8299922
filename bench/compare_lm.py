#!/usr/bin/env python
"""Benchmark: seqtasks' character language models against nanoGPT's CPU setting, side by side.

One run on one machine, each system in its own process (so peak memory is its own), one
after the other, on the same split of ``../shared/data/tinyshakespeare/train.txt`` (the
first 90% trains, the contiguous last 10% validates):

1. ``reference``: ``bench/lm_reference_torch.py`` in ``bench/.venv-torch`` (PyTorch,
   nanoGPT's "baby GPT on CPU": 4 layers, 4 heads, 128 wide, context 64, batch 12,
   2,000 iterations, dropout 0). Its training seconds ``S`` set the budget below.
2. ``seqtasks-transformer``: seqtasks' Transformer language model in the same shape
   (``--model transformer``, hidden_dim 128, 4 heads, 4 blocks, feed-forward 512,
   sequence_length 64, batch 12, dropout 0), trained for ``S`` seconds.
3. ``seqtasks-default``: the recipe's default character model (``train language-model
   --tokenizer char``: one 512-unit LSTM, windows of 128), trained for ``S`` seconds.

For each: training characters per second (target tokens trained / training seconds),
the full validation NLL in nats per character reached (every validation character
predicted once; non-overlapping windows of the system's context: the reference's read
64 characters, seqtasks' windows read ``[START]`` and ``sequence_length - 1``
characters), and peak resident memory. The seqtasks runs stop at the first batch after
``S`` seconds of ``fit`` (graph tracing included). Writes
``bench/results/compare_lm.json``; run by hand, not in CI:

    python bench/compare_lm.py
    python bench/compare_lm.py --seconds 300   # skip the reference's run, use this budget
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "tinyshakespeare", "train.txt")
TORCH = os.path.join(ROOT, "bench", ".venv-torch", "bin", "python")

SYSTEMS = {
    "seqtasks-transformer": {
        "model": "transformer", "hidden_dim": 128, "num_heads": 4, "num_layers": 4,
        "intermediate_dim": 512, "sequence_length": 64, "batch_size": 12, "dropout": 0.0,
        "learning_rate": 1e-3, "warmup_steps": 100,
    },
    "seqtasks-default": {},
}  # fmt: skip


def run_seqtasks(name: str, seconds: float) -> dict:
    """Train system ``name`` for ``seconds`` of ``fit`` and measure it (in this process)."""
    import keras

    from seqtasks.metrics import teacher_forced_metrics
    from tasks import get_recipe

    recipe = get_recipe("language-model")
    config = recipe.make_config(data=DATA, tokenizer="char", epochs=1000, **SYSTEMS[name])
    run_dir = f"/tmp/seqtasks-bench/compare-{name}-{time.strftime('%H%M%S')}"
    os.makedirs(run_dir, exist_ok=True)
    prepared = recipe.prepare(config, recipe.load_data(config), run_dir)
    model = recipe.build_model(config, prepared)
    recipe.compile_model(model, config, prepared)

    class Budget(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start, self.steps = time.perf_counter(), 0

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            if time.perf_counter() - self.start >= seconds:
                self.model.stop_training = True

    budget = Budget()
    model.fit(prepared.train, epochs=config.epochs, callbacks=[budget], verbose=0)
    train_seconds = time.perf_counter() - budget.start
    forced = teacher_forced_metrics(model, prepared.validation)
    chars = budget.steps * config.batch_size * config.sequence_length
    return {
        "system": name,
        "config": {
            k: v
            for k, v in config.to_dict().items()
            if k in SYSTEMS["seqtasks-transformer"] or k in ("model", "tokenizer")
        },
        "parameters": model.count_params(),
        "steps": budget.steps,
        "train_seconds": round(train_seconds, 1),
        "chars_per_second": round(chars / train_seconds, 1),
        "val_nll": forced["nll"],
        "val_targets": forced["tokens"],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, help="budget; default: the reference's time")
    parser.add_argument("--system", choices=sorted(SYSTEMS), help=argparse.SUPPRESS)
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "compare_lm.json")
    )
    args = parser.parse_args()
    if args.system:  # a child process: one system, JSON on the last line
        print(json.dumps(run_seqtasks(args.system, args.seconds)))
        return

    results = []
    if args.seconds is None:
        out = "/tmp/seqtasks-bench/compare-reference.json"
        subprocess.run([TORCH, os.path.join(ROOT, "bench", "lm_reference_torch.py"),
                        "--json", out, "--log-interval", "100"], check=True)  # fmt: skip
        with open(out) as f:
            reference = json.load(f)
        results.append({k: v for k, v in reference.items() if k not in ("curve_train_loss",)})
        args.seconds = reference["train_seconds"]
    for name in SYSTEMS:
        done = subprocess.run(
            [sys.executable, __file__, "--system", name, "--seconds", str(args.seconds)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    base = results[0]
    for row in results[1:]:
        row["chars_per_second_ratio_to_first"] = round(
            row["chars_per_second"] / base["chars_per_second"], 3
        )
        row["val_nll_ratio_to_first"] = round(row["val_nll"] / base["val_nll"], 4)
    report = {
        "command": "python " + " ".join(sys.argv),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "budget_seconds": args.seconds,
        "results": results,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(report, f, indent=1)
    for row in results:
        print(
            f"{row['system']:28s} {row['chars_per_second']:9.0f} chars/s  val NLL "
            f"{row['val_nll']:.4f}  peak {row['peak_rss_mib']:.0f} MiB  ({row['train_seconds']} s)"
        )


if __name__ == "__main__":
    main()
