"""Small Keras layers the seqtasks models share (``keras.ops`` only, any backend)."""

from __future__ import annotations

import keras
from keras import ops


def large_negative(dtype) -> float:
    """A stand-in for -inf that ``dtype`` holds: -3e4 for float16 (mixed precision), else -1e9.

    As ``keras.layers.MultiHeadAttention`` masks scores; -1e9 would overflow to
    -inf in float16.
    """
    return -3e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1e9


def pad_positions(cache, length: int):
    """One block's Transformer self-attention cache ``(B, 2, positions, heads, head_dim)``
    zero-padded along ``positions`` to ``length`` (static ints; beam search's growing
    cache, :func:`seqtasks.decoding.cache_stages`)."""
    extra = length - cache.shape[2]
    return ops.pad(cache, [[0, 0], [0, 0], [0, extra], [0, 0], [0, 0]])


@keras.saving.register_keras_serializable(package="seqtasks")
class MaskedPooling(keras.layers.Layer):
    """Mean or max over time that ignores padded steps.

    Unlike ``keras.layers.GlobalMaxPooling1D`` this honours the padding mask,
    so adding ``[PAD]`` steps never changes the result. A row whose mask is
    all ``False`` (an empty text) pools to zeros instead of NaN or -inf.

    Args:
        mode: ``"mean"`` or ``"max"``.

    Call arguments:
        inputs: float ``(batch_size, sequence_length, hidden_dim)``.
        padding_mask: bool ``(batch_size, sequence_length)``, ``True`` for
            real tokens. Defaults to the Keras mask attached to ``inputs``
            (all ``True`` if there is none).

    Returns:
        float ``(batch_size, hidden_dim)``.

    Raises:
        ValueError: if ``mode`` is not ``"mean"`` or ``"max"``.
    """

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "max"):
            raise ValueError(f"`mode` must be 'mean' or 'max'. Received: mode={mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, padding_mask=None, mask=None):
        if padding_mask is None:
            padding_mask = mask
        if padding_mask is None:
            padding_mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        valid = ops.expand_dims(ops.cast(padding_mask, inputs.dtype), -1)  # (B, T, 1)
        if self.mode == "mean":
            total = ops.sum(inputs * valid, axis=1)  # (B, D)
            count = ops.maximum(ops.sum(valid, axis=1), 1.0)  # (B, 1)
            return total / count
        lowest = ops.convert_to_tensor(large_negative(inputs.dtype), dtype=inputs.dtype)
        pooled = ops.max(ops.where(valid > 0, inputs, lowest), axis=1)  # (B, D)
        any_valid = ops.sum(valid, axis=1) > 0  # (B, 1)
        return ops.where(any_valid, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
