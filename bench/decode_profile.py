#!/usr/bin/env python
"""Benchmark: where a beam-search step of the Transformer translator spends its time (issue 20).

Loads a translation export's Keras model with this checkout's code and times, each as its
own ``tf.function`` on the same inputs (median of ``--repeats`` calls after a warm-up),
the parts of one step of :func:`seqtasks.decoding.beam_search` at beam 4, for a batch of
1 and of 32 Multi30k ``test_2016_flickr`` sources (4 and 128 hypotheses), with the
self-attention cache at ``--positions`` slots (a stage of the growing cache):

    decode_step      the model's cached step: embedding, every decoder block, logits
    blocks           the same without the output projection (embedding + blocks)
    logits           the output projection alone, (rows, 1, d_model) -> (rows, V)
    select           beam selection on given logits: log-softmax over V, length penalty,
                     top-k over k * V per input, parents and tokens
    reorder          the beam's gather of its cache, token buffer and scores by parent
                     (each block's self-attention keys and values; the source side is never moved)
    encode           once per call, not per step: encoder + cross-attention keys/values
                     of each source, repeated for its hypotheses

and the whole export-free search (``beam_search`` in a ``tf.function``, the default
settings) per call and per loop step. The step's parts do not add up exactly: the
``while_loop`` runs them in one graph.

    python bench/decode_profile.py /tmp/i20/export-head/1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
BEAM = 4


def median_ms(fn, args, repeats: int) -> float:
    """Median wall time of ``fn(*args)`` in milliseconds, after two warm-up calls."""
    import numpy as np

    def first(out):
        return out[0] if isinstance(out, (tuple, list)) else out

    for _ in range(2):
        np.asarray(first(fn(*args)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.asarray(first(fn(*args)))
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version_dir")
    parser.add_argument("--positions", type=int, default=32, help="self-attention cache slots")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument(
        "--output", default=os.path.join(ROOT, "bench", "results", "decode_profile.json")
    )
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf
    from beam_ablation import load_export_and_sources
    from keras import ops

    from seqtasks.decoding import beam_search
    from seqtasks.models.hub_decoder_step import block_step

    generator, ids = load_export_and_sources(args.version_dir, 32)
    model, length = generator.model, generator.max_length
    decoder = model.decoder
    static = model.num_static_cache
    index = args.positions // 2  # a step in the middle of the stage

    @tf.function
    def encode(x):  # as beam_search: each source once, its cache repeated per hypothesis
        return tuple(ops.repeat(c, BEAM, axis=0) for c in model.init_cache(x, args.positions))

    @tf.function
    def step(tokens, cache):
        return model.decode_step(tokens, cache, index)

    @tf.function
    def blocks(tokens, cache):
        x = decoder.target_embedding(tokens, start_index=index)
        cross, own = cache[1:static], cache[static:]
        for i, layer in enumerate(decoder.decoder_layers):
            x, _, _ = block_step(
                layer, x, own[2 * i], own[2 * i + 1], index, cross=cross[2 * i : 2 * i + 2],
                encoder_mask=cache[0],
            )  # fmt: skip
        return x

    @tf.function
    def logits(x):
        return decoder._logits(x)[:, 0, :]

    @tf.function
    def select(step_logits, log_probs, lengths):
        rows = ops.shape(step_logits)[0]
        vocabulary = ops.shape(step_logits)[-1]
        candidates = log_probs[:, None] + ops.log_softmax(step_logits, axis=-1)
        penalty = ops.power((5.0 + ops.cast(lengths + 1, "float32")) / 6.0, 0.6)
        ranking = ops.reshape(candidates / penalty[:, None], (rows // BEAM, BEAM * vocabulary))
        _, top = ops.top_k(ranking, k=BEAM, sorted=True)
        top = ops.reshape(top, (rows,))
        offsets = ops.repeat(ops.arange(rows // BEAM, dtype="int32") * BEAM, BEAM)
        parent = offsets + top // vocabulary
        token = top % vocabulary
        return parent, ops.take(ops.reshape(candidates, (-1,)), parent * vocabulary + token)

    @tf.function
    def reorder(parent, buffer, cache):
        moved = tuple(c if i < static else ops.take(c, parent, axis=0) for i, c in enumerate(cache))
        return ops.take(buffer, parent, axis=0), moved

    @tf.function(input_signature=[tf.TensorSpec((None, None), tf.int32)])
    def search(x):
        return beam_search(model, x, length, BEAM, 0.6, min_length=1)

    rows_of = {}
    for batch in (1, 32):
        x = ids[:batch]
        rows = batch * BEAM
        cache = encode(x)
        tokens = tf.fill((rows, 1), 7)
        hidden = blocks(tokens, cache)
        step_logits = logits(hidden)
        log_probs = tf.zeros((rows,))
        lengths = tf.fill((rows,), index)
        parent, _ = select(step_logits, log_probs, lengths)
        buffer = tf.zeros((rows, length), tf.int32)
        parts = {
            "decode_step": median_ms(step, (tokens, cache), args.repeats),
            "blocks": median_ms(blocks, (tokens, cache), args.repeats),
            "logits": median_ms(logits, (hidden,), args.repeats),
            "select": median_ms(select, (step_logits, log_probs, lengths), args.repeats),
            "reorder": median_ms(reorder, (parent, buffer, cache), args.repeats),
            "encode": median_ms(encode, (x,), args.repeats),
        }
        out_tokens, _ = search(x)
        # Loop steps: the longest output's tokens after [START] (settling can end sooner).
        steps = int(np.max(np.sum(np.asarray(out_tokens) > 0, axis=1))) - 1
        total = median_ms(search, (x,), max(5, args.repeats // 10))
        parts["beam_search_call"] = total
        parts["loop_steps"] = steps
        parts["beam_search_per_step"] = (total - parts["encode"]) / max(steps, 1)
        rows_of[f"batch{batch}"] = {k: round(v, 3) for k, v in parts.items()}
        print(batch, json.dumps(rows_of[f"batch{batch}"]), flush=True)
    vocabulary = int(step_logits.shape[-1])
    out = {
        "command": "python bench/decode_profile.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}, no GPU",
        "beam_size": BEAM,
        "cache_positions": args.positions,
        "target_vocabulary": vocabulary,
        "d_model": int(hidden.shape[-1]),
        "decoder_blocks": len(decoder.decoder_layers),
        "milliseconds": rows_of,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output + ".tmp", "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    os.replace(args.output + ".tmp", args.output)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
