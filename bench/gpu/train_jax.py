#!/usr/bin/env python
"""Train seqtasks' sentiment or translation model on the JAX backend from prepared token ids.

Runs without TensorFlow (the GPU machine has none): the batches and the model
description come from ``bench/gpu/prepare.py``, Keras and keras-hub from
``bench/gpu/vendor/`` (put first on ``sys.path``), the model from seqtasks' own
builders (:mod:`seqtasks.models.classifier`, :mod:`seqtasks.models.seq2seq`)
called with the arguments the recipe used, compiled with the recipe's
serialised optimizer, loss and metrics. Its parameter count must equal the
recipe model's.

It compiles one training step per distinct batch shape first (timed as
``compile_seconds``), then times ``model.fit`` over ``--steps`` batches (the
prepared epoch, cycled) and prints: the device, examples/s, real tokens/s
(padding excluded), mean step time, and the model FLOP utilisation (MFU):
analytic training FLOPs of the real tokens per second over the device's peak
(:func:`training_flops`, :data:`PEAK_TFLOPS`); also the same for the padded
tokens the device computes. CPU: MFU n/a.

    KERAS_BACKEND=jax python bench/gpu/train_jax.py --data bench/gpu/data/sentiment.npz
    KERAS_BACKEND=jax python bench/gpu/train_jax.py --data bench/gpu/data/translation.npz \\
        --steps 300 --batch-size 256 --mixed-precision bfloat16 --json $OUT/translation.json
    KERAS_BACKEND=jax python bench/gpu/train_jax.py --data ... --forbid-tensorflow --steps 3

Run by hand, never in CI.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENDOR = os.path.join(HERE, "vendor")
BLOCKED = ("tensorflow", "tensorflow_text", "tensorflow_datasets", "tf_keras")

# Dense (no sparsity) peak TFLOP/s by the data type of the matrix products. Sources: NVIDIA
# H100 Tensor Core GPU datasheet (SXM5 and PCIe columns; the sparsity figures halved), NVIDIA
# H200 datasheet (SXM: the H100 SXM's compute), NVIDIA A100 datasheet (SXM/PCIe).
PEAK_TFLOPS = {
    "H100 SXM": {"bfloat16": 989.4, "float16": 989.4, "tf32": 494.7, "float32": 66.9},
    "H100 PCIe": {"bfloat16": 756.0, "float16": 756.0, "tf32": 378.0, "float32": 51.2},
    "H200": {"bfloat16": 989.4, "float16": 989.4, "tf32": 494.7, "float32": 66.9},
    "A100": {"bfloat16": 312.0, "float16": 312.0, "tf32": 156.0, "float32": 19.5},
}
RNN_GATES = {"rnn": 1, "gru": 3, "lstm": 4, "bilstm": 4}


def forbid_tensorflow() -> None:
    """Make ``import tensorflow`` (and TF-based packages) fail, as on the GPU machine."""
    for name in BLOCKED:
        sys.modules[name] = None


def use_vendor() -> list[str]:
    """Put ``vendor/py`` and ``vendor/cp<XY>`` (this interpreter's) first on ``sys.path``."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    paths = [p for p in (os.path.join(VENDOR, "py"), os.path.join(VENDOR, tag)) if os.path.isdir(p)]
    sys.path[:0] = [*paths, ROOT]
    return paths


# --- data ---------------------------------------------------------------------------------


def load_batches(path: str) -> list[tuple[dict, object]]:
    """The prepared batches: ``(inputs, targets)``, ids int32, in the prepared order."""
    import numpy as np

    arrays = np.load(path)
    batches: dict[str, dict] = {}
    for key in arrays.files:
        batch, name = key.split("/", 1)
        value = arrays[key]
        batches.setdefault(batch, {})[name] = (
            value.astype(np.int32) if value.dtype == np.uint16 else value
        )
    return [(parts, parts.pop("targets")) for _, parts in sorted(batches.items())]


def rebatch(batches, batch_size: int):
    """Batches of ``batch_size`` rows: the rows of each padded length (bucket) concatenated
    in order and cut; a bucket's last partial batch is dropped (fixed shapes, fewer compiles)."""
    import numpy as np

    buckets: dict[tuple, list] = {}
    for order, (inputs, targets) in enumerate(batches):
        shape = tuple(sorted((k, v.shape[1:]) for k, v in inputs.items()))
        buckets.setdefault(shape, []).append((order, inputs, targets))
    out = []
    for members in buckets.values():
        inputs = {k: np.concatenate([m[1][k] for m in members]) for k in members[0][1]}
        targets = np.concatenate([m[2] for m in members])
        rows = np.concatenate([[m[0]] * len(m[2]) for m in members])
        for start in range(0, len(targets) - batch_size + 1, batch_size):
            end = start + batch_size
            part = {k: v[start:end] for k, v in inputs.items()}
            out.append((rows[start], part, targets[start:end]))
    out.sort(key=lambda item: item[0])
    return [(inputs, targets) for _, inputs, targets in out]


def model_inputs(inputs: dict):
    """What the model takes: the bare ids for the classifier (its one ``token_ids`` input, as
    the recipe's ``tf.data`` pipeline gives it), the dict for seq2seq models."""
    return inputs["token_ids"] if list(inputs) == ["token_ids"] else inputs


def shape_key(inputs, targets) -> tuple:
    return (*sorted((k, v.shape) for k, v in inputs.items()), targets.shape)


# --- model --------------------------------------------------------------------------------


def build_and_compile(description: dict):
    """The recipe's model from its seqtasks builder, compiled with the recipe's settings."""
    import keras
    import numpy as np

    import seqtasks.losses  # noqa: F401  (registers MaskedCrossEntropy, WarmupInverseSqrt)

    spec = description["builder"]
    builder = getattr(importlib.import_module(spec["module"]), spec["name"])
    model = builder(*spec["args"], **spec["kwargs"])
    if description["build_call"]:  # as TranslationRecipe.build_model does
        dummy = np.ones((1, 2), np.int32)
        model({"encoder_token_ids": dummy, "decoder_token_ids": dummy})
    compile_spec = description["compile"]
    metrics = []
    for metric in compile_spec["metrics"]:
        if isinstance(metric, str):
            module, name = metric.rsplit(".", 1)
            metrics.append(getattr(importlib.import_module(module), name))
        else:
            metrics.append(keras.metrics.deserialize(metric))
    model.compile(
        optimizer=keras.optimizers.deserialize(compile_spec["optimizer"]),
        loss=keras.losses.deserialize(compile_spec["loss"]),
        metrics=metrics,
    )
    return model


def training_flops(description: dict, inputs: dict, padded: bool) -> float | None:
    """Analytic FLOPs of one training step (forward + backward = 3x forward) on a batch.

    Counts the matrix products (2 FLOPs per multiply-add); embeddings' lookups,
    element-wise work and the optimizer are left out. ``padded=False`` counts each
    row's real tokens (the model FLOPs of MFU), ``padded=True`` the padded shape the
    device computes.

    - Recurrent encoders (sentiment): per token, layer and direction
      ``2 * gates * (input + hidden) * hidden`` (gates: LSTM 4, GRU 3, SimpleRNN 1).
    - Transformers: per token ``2 * N`` for the weights it passes through (Kaplan et
      al. 2020, "Scaling Laws for Neural Language Models", sec. 2.1: ``C_forward = 2N
      + 2 n_layer n_ctx d_attn``) plus the attention term ``4 * n_ctx * d`` per layer
      (scores and the weighted sum), counted over the full context, causal or not, as
      in Chowdhery et al. 2022, "PaLM", appendix B (``6N + 12 L H Q T`` for training).
      Encoder-decoder: encoder blocks and the cross-attention key/value projections per
      source token; decoder self-attention, cross-attention query/output projections,
      feed-forward and the output softmax layer per target token; cross-attention over
      the source length.

    Returns:
        FLOPs, or None for a model without a count here (``rnn-attention`` translation).
    """
    import numpy as np

    def lengths(ids):
        if padded:
            return np.full(len(ids), ids.shape[1], np.int64)
        return np.count_nonzero(ids, axis=1).astype(np.int64)

    kwargs = description["builder"]["kwargs"]
    name = description["builder"]["name"]
    if name == "build_text_classifier":
        tokens = lengths(inputs["token_ids"])
        kind, layers = kwargs["kind"], kwargs["num_layers"]
        if kind in RNN_GATES:
            hidden, directions = kwargs["hidden_dim"], 2 if kind == "bilstm" else 1
            per_token, width = 0, kwargs["embedding_dim"]
            for _ in range(layers):
                per_token += directions * 2 * RNN_GATES[kind] * (width + hidden) * hidden
                width = directions * hidden
            forward = per_token * tokens.sum()
        else:  # transformer encoder blocks of width embedding_dim
            d, f = kwargs["embedding_dim"], kwargs["intermediate_dim"]
            forward = layers * ((8 * d * d + 4 * d * f) * tokens.sum() + 4 * d * (tokens**2).sum())
        return 3.0 * float(forward)
    if name == "TransformerSeq2Seq":
        d, f, layers = kwargs["hidden_dim"], kwargs["intermediate_dim"], kwargs["num_layers"]
        target_vocabulary = description["builder"]["args"][1]
        source = lengths(inputs["encoder_token_ids"])
        target = lengths(inputs["decoder_token_ids"])
        per_source = layers * (8 * d * d + 4 * d * f) + layers * 4 * d * d
        per_target = layers * (8 * d * d + 4 * d * d + 4 * d * f) + 2 * d * target_vocabulary
        attention = (
            layers * 4 * d * ((source**2).sum() + (target**2).sum() + (target * source).sum())
        )
        forward = per_source * source.sum() + per_target * target.sum() + attention
        return 3.0 * float(forward)
    return None


def device_peak(device_kind: str, precision: str) -> tuple[str, float] | None:
    """``(name, TFLOP/s)`` of the device's dense peak for ``precision``, None if unknown/CPU.

    float32: XLA on Ampere/Hopper may run float32 matrix products on TF32 tensor cores at
    JAX's default matmul precision, so the TF32 peak is the denominator (the FP32 one is
    printed beside it).
    """
    kind = device_kind.upper()
    for name in ("H200", "A100"):
        if name in kind:
            break
    else:
        if "H100" not in kind:
            return None
        name = "H100 PCIe" if "PCIE" in kind else "H100 SXM"
    key = "tf32" if precision == "float32" else precision
    return f"{name} {key}", PEAK_TFLOPS[name][key]


def xla_flops(model, inputs: dict, targets) -> float | None:
    """XLA's FLOP count (``cost_analysis()``) of loss + gradients on one batch, or None.

    A cross-check of :func:`training_flops` (``padded=True``). XLA counts a loop
    body once, not once per iteration, so for the recurrent models (``lax.scan``)
    it undercounts and is no check.
    """
    import jax

    def loss(trainable, non_trainable, x, y):
        y_pred, _ = model.stateless_call(trainable, non_trainable, x, training=True)
        return model.loss(y, y_pred)

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    lowered = jax.jit(jax.value_and_grad(loss)).lower(
        trainable, non_trainable, model_inputs(inputs), targets
    )
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return None if not cost or "flops" not in cost else float(cost["flops"])


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="A .npz written by prepare.py.")
    parser.add_argument("--steps", type=int, default=100, help="Timed training steps.")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="Re-cut the prepared batches (default: the recipe's, as prepared).",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=("none", "bfloat16", "float16"),
        default="none",
        help="Keras mixed_bfloat16 / mixed_float16 policy (default: float32).",
    )
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--json", help="Write the results to this file too.")
    parser.add_argument(
        "--xla-flops",
        action="store_true",
        help="Also print XLA's FLOP count of one step on the first batch (one more compile).",
    )
    parser.add_argument(
        "--forbid-tensorflow",
        action="store_true",
        help="Make `import tensorflow` fail (simulates the GPU machine) and check it stayed out.",
    )
    args = parser.parse_args()
    if args.steps < 1 or (args.batch_size is not None and args.batch_size < 1):
        sys.exit("error: --steps and --batch-size: expected a positive integer")
    for path in (args.data, os.path.splitext(args.data)[0] + ".json"):
        if not os.path.isfile(path):
            sys.exit(f"error: --data: no file {path}; make it with bench/gpu/prepare.py")
    if args.forbid_tensorflow:
        forbid_tensorflow()
    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        sys.exit(f"error: KERAS_BACKEND={os.environ['KERAS_BACKEND']}; run with KERAS_BACKEND=jax")
    os.environ["KERAS_BACKEND"] = "jax"
    vendored = use_vendor()

    try:
        import jax
    except ImportError:
        sys.exit("error: jax is not installed here (see bench/gpu/requirements-cpu.txt)")
    import keras
    import numpy as np

    from seqtasks.io import write_json_atomic

    with open(os.path.splitext(args.data)[0] + ".json", encoding="utf-8") as f:
        description = json.load(f)
    batches = load_batches(args.data)
    if args.batch_size:
        batches = rebatch(batches, args.batch_size)
        if not batches:
            sys.exit(f"error: --batch-size {args.batch_size}: no bucket has that many rows")
    if args.mixed_precision != "none":
        keras.mixed_precision.set_dtype_policy(f"mixed_{args.mixed_precision}")
    keras.utils.set_random_seed(args.seed)
    model = build_and_compile(description)
    parameters = model.count_params()
    if parameters != description["parameters"]:
        sys.exit(
            f"error: {parameters} parameters, the recipe's model has {description['parameters']}"
        )

    timed = [batches[i % len(batches)] for i in range(args.steps)]
    shapes = {}  # one batch per distinct shape, in order of appearance
    for inputs, targets in timed:
        shapes.setdefault(shape_key(inputs, targets), (inputs, targets))

    def feed(batches):
        for inputs, targets in batches:
            yield model_inputs(inputs), targets

    # Warm-up through fit itself (train_on_batch passes another data structure, so its
    # compiled step is not reused by fit): one step per shape compiles every shape.
    start = time.perf_counter()
    model.fit(feed(shapes.values()), steps_per_epoch=len(shapes), epochs=1, verbose=0)
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    history = model.fit(feed(timed), steps_per_epoch=args.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start

    real_key = "token_ids" if "token_ids" in timed[0][0] else None
    examples = sum(len(targets) for _, targets in timed)
    if real_key:
        real_tokens = sum(int(np.count_nonzero(x[real_key])) for x, _ in timed)
        padded_tokens = sum(x[real_key].size for x, _ in timed)
    else:  # translation: source tokens + target tokens ([END] included)
        real_tokens = sum(
            int(np.count_nonzero(x["encoder_token_ids"]) + np.count_nonzero(y)) for x, y in timed
        )
        padded_tokens = sum(x["encoder_token_ids"].size + y.size for x, y in timed)
    flops = [training_flops(description, x, padded=False) for x, _ in timed]
    padded_flops = [training_flops(description, x, padded=True) for x, _ in timed]
    device = jax.devices()[0]
    precision = "float32" if args.mixed_precision == "none" else args.mixed_precision
    peak = device_peak(device.device_kind, precision)
    model_flops = None if None in flops else sum(flops)
    result = {
        "task": description["task"],
        "model": description["builder"]["name"],
        "device": f"{device.platform}: {device.device_kind}",
        "devices": [str(d) for d in jax.devices()],
        "precision": keras.mixed_precision.dtype_policy().name,
        "parameters": parameters,
        "steps": args.steps,
        "batch_size": args.batch_size or "as prepared",
        "distinct_shapes": len(shapes),
        "compile_seconds": round(compile_seconds, 2),  # the warm-up: one step per shape
        "seconds": round(seconds, 3),
        "step_ms": round(1000 * seconds / args.steps, 2),
        "examples_per_s": round(examples / seconds, 1),
        "real_tokens_per_s": round(real_tokens / seconds, 1),
        "padding_share": round(1 - real_tokens / padded_tokens, 4),
        "model_tflops_per_s": None
        if model_flops is None
        else round(model_flops / seconds / 1e12, 4),
        "padded_tflops_per_s": (
            None if None in padded_flops else round(sum(padded_flops) / seconds / 1e12, 4)
        ),
        "peak": None if peak is None else f"{peak[0]} {peak[1]} TFLOP/s (dense)",
        "mfu": (
            None
            if peak is None or model_flops is None
            else round(model_flops / seconds / 1e12 / peak[1], 5)
        ),
        "final_loss": round(float(history.history["loss"][-1]), 4),
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
        "vendored": [os.path.relpath(p, ROOT) for p in vendored],
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "keras": keras.__version__,
            "keras_hub": importlib.import_module("keras_hub").__version__,
            "numpy": np.__version__,
        },
        "data": os.path.relpath(os.path.abspath(args.data), ROOT),
    }
    if args.xla_flops:
        inputs, targets = timed[0]
        result["xla_flops_first_batch"] = xla_flops(model, inputs, targets)
        result["analytic_padded_flops_first_batch"] = padded_flops[0]
    if peak is not None and precision == "float32" and model_flops is not None:
        fp32 = PEAK_TFLOPS[peak[0].rsplit(" ", 1)[0]]["float32"]
        result["mfu_vs_fp32_peak"] = round(model_flops / seconds / 1e12 / fp32, 5)
    for key, value in result.items():
        print(f"{key:>20}: {'n/a' if value is None else value}")
    if args.forbid_tensorflow and result["tensorflow_imported"]:
        sys.exit("error: tensorflow was imported")
    if args.json:
        write_json_atomic(args.json, result)


if __name__ == "__main__":
    main()
