"""Mixed-precision training (config field ``mixed_precision``, flag ``--mixed-precision``).

With ``mixed_precision=true`` the models are built under Keras' global dtype
policy ``mixed_float16`` (Micikevicius et al. 2018, "Mixed Precision
Training"): layers compute in float16 and keep float32 variables. The output
layers (the classifier's ``probabilities``, the seq2seq models' ``logits``)
are built with ``dtype="float32"``, so softmax, loss and the exported outputs
stay float32, and the inputs of the exports (strings, int32 ids, float32
image features) do not change. ``Model.compile`` wraps the optimizer in a
``keras.optimizers.LossScaleOptimizer`` itself when the model's policy is
``mixed_float16`` (Keras 3 ``Trainer.compile``), which float16 gradients need.

Why float16 rather than bfloat16: the target is NVIDIA GPUs, where TensorFlow's
cuDNN LSTM/GRU kernels take float16 but not bfloat16, so ``mixed_float16``
keeps the RNN recipes on cuDNN; it gets the same Tensor Core speed-up on
Volta and later GPUs, at the price of loss scaling (automatic, see above).
On a CPU float16 math is emulated and slower than float32, so a warning is
logged when no GPU is visible.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)

MIXED_POLICY = "mixed_float16"
# Layers that stay float32 under the mixed policy: the models' outputs.
FLOAT32_LAYERS = ("probabilities", "logits")


@contextlib.contextmanager
def precision_policy(mixed: bool) -> Iterator[None]:
    """Keras' global dtype policy ``mixed_float16`` inside the block when ``mixed``.

    Models built inside the block keep the policy afterwards; the previous
    global policy is restored on exit. Without ``mixed`` nothing changes.
    Logs one warning when ``mixed`` and TensorFlow sees no GPU.
    """
    if not mixed:
        yield
        return
    import keras
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        log.warning(
            "mixed_precision=true but no GPU is visible: float16 is emulated on CPUs and "
            "trains slower than float32 (leave mixed_precision off on CPU)"
        )
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(MIXED_POLICY)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def follow_global_policy(model):
    """Give a loaded (e.g. fine-tuned) ``model`` the current global dtype policy; return it.

    A model read from a ``.keras`` file keeps the policy it was saved with;
    fine-tuning sets every layer (and the model itself, which decides on loss
    scaling at ``compile``) to the global policy, except the float32 output
    layers (:data:`FLOAT32_LAYERS`). Variables keep their float32 values: the
    policies differ only in the compute dtype.
    """
    import keras

    policy = keras.mixed_precision.global_policy()
    for layer in model._flatten_layers(include_self=True):
        if layer.name not in FLOAT32_LAYERS and layer.dtype_policy.name != policy.name:
            layer.dtype_policy = policy
    return model
