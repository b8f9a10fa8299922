"""What the comparisons' workers share: arguments, data, step timing, the result.

Every worker (``bench/compare_sentiment.py --worker seqtasks``,
``sentiment_keras.py``, ``sentiment_torch.py``; ``bench/compare_translation.py
--worker seqtasks``, ``translation_keras.py``, ``translation_torch.py``) trains
on the same training split (the data read by seqtasks' own reader, split by its
seeded ``split_indices``) for ``--steps`` batches of ``--batch-size``, then times
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


def parser(
    description: str, sequence_length: int = 1000, vocabulary_size: int = 30000
) -> argparse.ArgumentParser:
    """The workers' shared options; the defaults of the last two are the sentiment recipe's."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", required=True, help="training data (any layout seqtasks reads)")
    p.add_argument("--max-examples", type=int, default=None, help="first N examples only")
    p.add_argument("--steps", type=int, default=200, help="training steps (batches)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--sequence-length", type=int, default=sequence_length, help="tokens kept per text"
    )
    p.add_argument(
        "--vocabulary-size", type=int, default=vocabulary_size, help="embedding rows (bound)"
    )
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--ids", default=None, help="npz of token ids (written by the Keras reference)")
    p.add_argument("--t0", type=float, default=None, help="launch time (time.time()) of the run")
    p.add_argument("--result", required=True, help="where to write the JSON result")
    return p


def translation_parser(description: str) -> argparse.ArgumentParser:
    """:func:`parser` with the translation recipe's defaults (64 tokens, WordPiece
    vocabularies of at most 8,000 tokens) and the language pair; ``--single-calls``
    (16) and ``--batch-calls`` (3) set how many inference calls are timed (decoding is
    slow: the references re-run their model for every new token)."""
    p = parser(description, sequence_length=64, vocabulary_size=8000)
    p.add_argument("--source-lang", default="en")
    p.add_argument("--target-lang", default="de")
    p.add_argument("--single-calls", type=int, default=16, help="batch-1 calls timed (16)")
    p.add_argument("--batch-calls", type=int, default=3, help="batch-64 calls timed (3)")
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


def load_pairs(args) -> tuple[list[str], list[str], list[str], list[str]]:
    """``(train_sources, train_targets, val_sources, val_targets)`` of ``args.data`` (a
    folder of ``<split>.<lang>`` files, the ``train`` split), read by seqtasks'
    ``load_parallel`` and split as its translation recipe does by default (10%
    validation, seeded ``split_indices``)."""
    from seqtasks.data.parallel import load_parallel
    from seqtasks.data.pipeline import split_indices

    data = load_parallel(
        args.data,
        source_lang=args.source_lang,
        target_lang=args.target_lang,
        max_examples=args.max_examples,
    )
    train_idx, val_idx = split_indices(len(data), 0.1, args.seed)
    return (
        [data.sources[i] for i in train_idx],
        [data.targets[i] for i in train_idx],
        [data.sources[i] for i in val_idx],
        [data.targets[i] for i in val_idx],
    )


def vocabulary_digest(*vocabularies: list[str]) -> str:
    """SHA-1 of token lists (the runner checks that every system used the same ids)."""
    import hashlib

    return hashlib.sha1("\0".join("\n".join(v) for v in vocabularies).encode()).hexdigest()


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


def seqtasks_training(recipe, config, run_dir: str, steps: int, count, t0):
    """Train a seqtasks recipe for ``steps`` batches through its own steps, timed.

    Seeds, then the recipe's ``load_data``, ``prepare`` (vocabularies in
    ``run_dir``), ``build_model`` and ``compile_model``; ``fit`` runs over the
    first ``steps`` batches of the training pipeline, which ``count(inputs,
    targets) -> (examples, real tokens, tokens with padding)`` counts first.

    Returns:
        ``(data, prepared, model, figures)``: ``figures`` has ``parameters`` and
        :func:`training_figures`.
    """
    from seqtasks.training import seed_everything

    seed_everything(config.seed)
    data = recipe.load_data(config)
    prepared = recipe.prepare(config, data, run_dir)
    model = recipe.build_model(config, prepared)
    recipe.compile_model(model, config)
    params = model.count_params()
    print(f"seqtasks: {params:,} parameters")
    train = prepared.train.repeat()
    sizes, real, padded = [], [], []
    for inputs, targets in train.take(steps):  # the batches fit will see (same seeded order)
        n, tokens, processed = count(inputs, targets)
        sizes.append(n)
        real.append(tokens)
        padded.append(processed)
    clock = StepClock()
    model.fit(train, epochs=1, steps_per_epoch=steps, callbacks=[keras_clock(clock)], verbose=0)
    figures = {"parameters": params, **training_figures(clock, sizes, real, padded, t0)}
    return data, prepared, model, figures


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


def time_calls(fn, single_inputs, batch_input, batch_calls: int = BATCH_CALLS) -> dict:
    """p50 latency and examples/s of ``fn`` at batch 1 (one call per input of
    ``single_inputs``) and at batch 64 (``batch_calls`` calls of ``batch_input``), after a
    warm-up pass over the same inputs (tracing and retracing are not timed)."""
    for x in single_inputs:
        fn(x)
    fn(batch_input)
    result = {}
    for name, inputs, size in (
        ("batch_1", single_inputs, 1),
        ("batch_64", [batch_input] * batch_calls, len(batch_input)),
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


def output_tokens(token_ids, end_id: int) -> float:
    """Mean tokens generated per row of decoder output ``token_ids`` int ``(B, L)`` (``[START]``
    first): up to and including the first ``end_id``; a row without one ran to the end of
    the buffer (``L - 1`` tokens, whatever they are: an untrained model may emit ``[PAD]``)."""
    import numpy as np

    counts = []
    for row in np.asarray(token_ids)[:, 1:]:
        ends = np.flatnonzero(row == end_id)
        counts.append(int(ends[0]) + 1 if ends.size else len(row))
    return round(float(np.mean(counts)), 1)


def write_result(path: str, result: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, path)
    print(json.dumps(result))


# --- the runners' side (compare_sentiment.py, compare_translation.py) ----------------------


def run_worker(command: list[str], system: str, tmp: str) -> dict:
    """Run one worker ``command`` in its own process (``--t0`` and ``--result`` appended),
    from the repository root; its result with ``wall_s`` added. Exits on a failed run."""
    import subprocess

    result = os.path.join(tmp, f"{system}.json")
    command = [*command, "--t0", repr(time.time()), "--result", result]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"error: {system} run failed (exit status {done.returncode}): {command}")
    with open(result, encoding="utf-8") as f:
        out = json.load(f)
    out["wall_s"] = round(time.perf_counter() - start, 1)
    return out


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def median(runs: list[dict], *keys):
    values = []
    for run in runs:
        for key in keys:
            run = run[key]
        values.append(run)
    return statistics.median(values)


TRAINING_ROWS = (
    ("examples/s", ("examples_per_s",), True),
    ("real tokens/s", ("real_tokens_per_s",), True),
    ("tokens computed/s (padding incl.)", ("processed_tokens_per_s",), True),
    ("padding share", ("padding_share",), None),
    ("launch to end of first step (s)", ("launch_to_first_step_s",), False),
    ("first step alone (s)", ("first_step_s",), False),
    ("peak RSS after training (MB)", ("peak_rss_mb_after_training",), False),
)


def table(runs: dict[str, list[dict]], systems: tuple[str, ...]) -> str:
    """Markdown tables: medians per system and seqtasks/reference ratios (min/median/max).

    ``systems``: seqtasks first, then the references. The inference table gets a
    column "mean output tokens" when the runs record ``output_tokens`` (generation).
    """
    references = [s for s in systems[1:] if runs.get(s)]
    head = ["", *[s for s in systems if runs.get(s)]]
    if runs.get("seqtasks"):
        head += [f"seqtasks/{r} (min/med/max)" for r in references]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, keys, _ in TRAINING_ROWS:
        row = [label]
        for system in systems:
            if runs.get(system):
                row.append(f"{median(runs[system], *keys):g}")
        if runs.get("seqtasks"):
            for ref in references:
                ratios = [
                    s_run[keys[0]] / r_run[keys[0]] if r_run[keys[0]] else float("nan")
                    for s_run, r_run in zip(runs["seqtasks"], runs[ref])
                ]
                row.append(spread(ratios))
        lines.append("| " + " | ".join(row) + " |")
    params = ["parameters", *[f"{runs[s][0]['parameters']:,}" for s in systems if runs.get(s)]]
    lines.append("| " + " | ".join(params + [""] * (len(head) - len(params))) + " |")

    kinds = [(s, k) for s in systems if runs.get(s) for k in runs[s][0]["inference"]]
    lengths = any("output_tokens" in runs[s][0]["inference"][k] for s, k in kinds)
    head = "| inference (median of runs) | batch 1 p50 ms | batch 64 p50 ms | batch 64 examples/s |"
    lines += ["", head + (" mean output tokens (batch 64) |" if lengths else "")]
    lines.append("|---|---|---|---|" + ("---|" if lengths else ""))
    for system, kind in kinds:
        b1 = median(runs[system], "inference", kind, "batch_1", "p50_ms")
        b64 = median(runs[system], "inference", kind, "batch_64", "p50_ms")
        eps = median(runs[system], "inference", kind, "batch_64", "examples_per_s")
        line = f"| {system}: {kind} | {b1:g} | {b64:g} | {eps:g} |"
        if lengths:
            tokens = runs[system][0]["inference"][kind].get("output_tokens")
            line += (
                f" {median(runs[system], 'inference', kind, 'output_tokens'):g} |"
                if (tokens is not None)
                else " |"
            )
        lines.append(line)
    return "\n".join(lines)


def save_results(path: str, script: str, data: str, settings: dict, runs, table_text) -> None:
    """Write the command, machine, settings, every run's figures and the tables to ``path``
    (atomically)."""
    import platform

    result = {
        "command": f"python bench/{script} " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "data": data,
        "settings": settings,
        "runs": runs,
        "table": table_text,
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".tmp", path)
