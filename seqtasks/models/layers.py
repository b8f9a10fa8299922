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
    """A Transformer self-attention cache whose axis 2 is the positions, keras-hub's
    ``(B, 2, positions, heads, head_dim)`` or a head-major ``(B, heads, positions,
    head_dim)``, zero-padded along it to ``length`` (static ints; beam search's growing
    cache, :func:`seqtasks.decoding.cache_stages`)."""
    pads = [[0, 0] for _ in cache.shape]
    pads[2] = [0, length - cache.shape[2]]
    return ops.pad(cache, pads)


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


@keras.saving.register_keras_serializable(package="seqtasks")
class MaskedConvolution(keras.layers.Layer):
    """A residual 1-D convolution over time that padded steps neither feed nor receive:
    ``y = x + activation(Conv1D(x * m)) * m`` with ``m`` the padding mask.

    It gives a recurrence whose gates read the current input only
    (:class:`~seqtasks.models.min_rnn.MinGRU`) features of the neighbouring tokens: the
    short convolution the Mamba block puts before its scan (Gu & Dao 2023), as n-gram
    detectors over word embeddings (Kim 2014, sec. 2). Padded inputs are zeroed first, so
    with ``padding="same"`` a real position's output is the one of the unpadded sequence
    (whose border is zero-padded too); ``"causal"`` reads only earlier positions.

    Args:
        kernel_size: positions each output reads (int >= 1).
        padding: ``"same"`` (default; centred, for encoders that see the whole text) or
            ``"causal"``.
        activation: of the convolution (default ``"silu"``).

    Call arguments:
        inputs: float ``(batch_size, sequence_length, channels)``; the output has as many
            channels (the convolution keeps the width for the residual connection).
        mask: bool ``(batch_size, sequence_length)``, ``True`` for real tokens: the Keras
            mask of the inputs (e.g. from ``Embedding(mask_zero=True)``), passed on
            unchanged. None: every position is real.

    Returns:
        float ``(batch_size, sequence_length, channels)``.

    Raises:
        ValueError: ``kernel_size < 1`` or another ``padding``.
    """

    def __init__(self, kernel_size: int, padding: str = "same", activation="silu", **kwargs):
        super().__init__(**kwargs)
        if int(kernel_size) < 1:
            raise ValueError(f"`kernel_size` must be >= 1. Received: kernel_size={kernel_size}")
        if padding not in ("same", "causal"):
            raise ValueError(f"`padding` must be 'same' or 'causal'. Received: {padding!r}")
        self.kernel_size = int(kernel_size)
        self.padding = padding
        self.activation = keras.activations.get(activation)
        self.supports_masking = True
        self.conv = None

    def build(self, input_shape):
        self.conv = keras.layers.Conv1D(
            input_shape[-1],
            self.kernel_size,
            padding=self.padding,
            name="conv",
            dtype=self.dtype_policy,  # the layer's, also when loaded under another policy
        )
        self.conv.build(input_shape)

    def call(self, inputs, mask=None):
        if mask is None:
            return inputs + self.activation(self.conv(inputs))
        real = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)  # (B, T, 1)
        return inputs + self.activation(self.conv(inputs * real)) * real

    def step(self, window):
        """The causal output at the last of ``kernel_size`` positions, for cached decoding.

        Args:
            window: float ``(batch_size, kernel_size, channels)``: the inputs at positions
                ``t - kernel_size + 1 .. t`` (zeros before the first position, as the
                parallel call's causal padding).

        Returns:
            float ``(batch_size, 1, channels)``: what the parallel call with
            ``padding="causal"`` gives at position ``t`` of a right-padded sequence (the
            parallel call zeroes a padded input inside the window; a caller that skips
            padded steps, as cached decoding does, keeps them out of the window instead).

        Raises:
            ValueError: for a ``padding="same"`` layer, or a window of another length.
        """
        if self.padding != "causal":
            raise ValueError("`step` needs padding='causal'; this layer's padding is 'same'")
        if window.shape[1] is not None and window.shape[1] != self.kernel_size:
            raise ValueError(
                f"`window` must hold kernel_size={self.kernel_size} positions. "
                f"Received: window.shape={tuple(window.shape)}"
            )
        kernel = ops.cast(self.conv.kernel, window.dtype)  # (K, C, C); no autocast outside call
        bias = ops.cast(self.conv.bias, window.dtype)
        convolved = ops.conv(window, kernel, padding="valid") + bias  # (B, 1, C)
        return window[:, -1:, :] + self.activation(convolved)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "padding": self.padding,
            "activation": keras.activations.serialize(self.activation),
        }
