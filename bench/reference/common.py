"""What the sentiment comparison's workers share: arguments, data, step timing, the result.

Every worker (``bench/compare_sentiment.py --worker seqtasks``,
``sentiment_keras.py``, ``sentiment_torch.py``) trains on the same training
split (the data read by seqtasks' own reader, split by its seeded
``split_indices``) for ``--steps`` batches of ``--batch-size``, then times
inference on the first 64 validation texts, and writes one JSON object to
``--result``. Nothing here is part of seqtasks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

INFERENCE_TEXTS = 64  # validation texts timed at inference
SINGLE_CALLS = 32  # batch-1 calls timed (one per text)
BATCH_CALLS = 5  # batch-64 calls timed


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", required=True, help="training data (any layout seqtasks reads)")
    p.add_argument("--max-examples", type=int, default=None, help="first N examples only")
    p.add_argument("--steps", type=int, default=200, help="training steps (batches)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sequence-length", type=int, default=1000, help="tokens kept per text")
    p.add_argument("--vocabulary-size", type=int, default=30000, help="embedding rows")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--ids", default=None, help="npz of token ids (written by the Keras reference)")
    p.add_argument("--t0", type=float, default=None, help="launch time (time.time()) of the run")
    p.add_argument("--result", required=True, help="where to write the JSON result")
    return p


def load_split(args) -> tuple[list[str], list[int], list[str], list[int], list[str]]:
    """``(train_texts, train_labels, val_texts, val_labels, label_names)``; labels are ids
    into the sorted label names, the split is seqtasks' (10% validation, seeded)."""
    from seqtasks.data.classification import load_text_classification
    from seqtasks.data.pipeline import split_indices

    data = load_text_classification(args.data, max_examples=args.max_examples)
    names = data.label_set()
    ids = [names.index(label) for label in data.labels]
    train_idx, val_idx = split_indices(len(data), 0.1, args.seed)
    return (
        [data.texts[i] for i in train_idx],
        [ids[i] for i in train_idx],
        [data.texts[i] for i in val_idx],
        [ids[i] for i in val_idx],
        names,
    )


def batch_order(n: int, steps: int, batch_size: int, seed: int):
    """Row indices of each of ``steps`` batches: seeded permutations, one per epoch, cut
    into full batches (as a keras.io script's ``shuffle`` then ``batch`` with
    ``drop_remainder``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    batches = []
    while len(batches) < steps:
        order = rng.permutation(n)
        batches += [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
    return batches[:steps]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class StepClock:
    """Wall times at the end of each training step (``tick``), from ``start``."""

    def __init__(self):
        self.start = None
        self.ends: list[float] = []

    def begin(self):
        self.start = time.perf_counter()

    def tick(self):
        if not self.ends:
            self.first_wall = time.time()
        self.ends.append(time.perf_counter())


def keras_clock(clock: StepClock):
    """A Keras callback that starts ``clock`` with training and ticks it after each step."""
    import keras

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            clock.begin()

        def on_train_batch_end(self, batch, logs=None):
            clock.tick()

    return Clock()


def training_figures(clock: StepClock, sizes: list[int], real: list[int], padded: list[int], t0):
    """Throughput over steps 2..N (the first step, with its tracing, is time to first step).

    ``sizes``, ``real``, ``padded``: examples, non-padding tokens and tokens
    processed (padding included) of each step, in order.
    """
    n = len(clock.ends)
    seconds = clock.ends[-1] - clock.ends[0]
    examples, tokens, processed = sum(sizes[1:n]), sum(real[1:n]), sum(padded[1:n])
    return {
        "steps": n,
        "first_step_s": round(clock.ends[0] - clock.start, 3),
        "launch_to_first_step_s": round(clock.first_wall - t0, 2) if t0 else None,
        "steady_seconds": round(seconds, 3),
        "examples_per_s": round(examples / seconds, 2),
        "real_tokens_per_s": round(tokens / seconds, 1),
        "processed_tokens_per_s": round(processed / seconds, 1),
        "padding_share": round(1 - sum(real[:n]) / sum(padded[:n]), 4),
        "mean_real_tokens_per_example": round(sum(real[:n]) / sum(sizes[:n]), 1),
        "peak_rss_mb_after_training": round(peak_rss_mb(), 1),
    }


def time_calls(fn, single_inputs, batch_input) -> dict:
    """p50 latency and examples/s of ``fn`` at batch 1 (one call per input of
    ``single_inputs``) and at batch 64 (``BATCH_CALLS`` calls of ``batch_input``), after a
    warm-up pass over the same inputs (tracing and retracing are not timed)."""
    for x in single_inputs:
        fn(x)
    fn(batch_input)
    result = {}
    for name, inputs, size in (
        ("batch_1", single_inputs, 1),
        ("batch_64", [batch_input] * BATCH_CALLS, INFERENCE_TEXTS),
    ):
        times = []
        for x in inputs:
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
        result[name] = {
            "p50_ms": round(statistics.median(times) * 1000, 2),
            "examples_per_s": round(size * len(times) / sum(times), 1),
        }
    return result


def write_result(path: str, result: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, path)
    print(json.dumps(result))
