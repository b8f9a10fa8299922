"""A cached decoding step of keras-hub ``TransformerDecoder`` blocks with head-major caches.

keras-hub's own cached call keeps each block's keys and values stacked in one tensor
``(B, 2, positions, heads, head_dim)``. At every step its ``CachedMultiHeadAttention``
slices keys and values out of that tensor, writes the new position into each, stacks them
again, and its attention ``einsum`` transposes the positions-major keys and values to
batched matrix products: five copies of each block's self-attention cache and three of
its cross-attention cache per generated token. With beams folded into the batch those
copies, not the matrix products, were most of a step (``bench/README.md``, issue 20:
three blocks of 256 at 128 hypotheses, 32 cached positions: 10.7-11.4 ms with
keras-hub's call, 6.2-6.4 ms with this step, the same outputs).

:func:`block_step` computes the same block (Vaswani et al. 2017, sec. 3.1-3.2: masked
self-attention, cross-attention over the encoder, feed-forward network, each with a
residual connection and layer normalisation after it, or before it for
``normalize_first=True``) at inference, from the block's own weights, over separate key
and value caches laid out head-major, ``(B, heads, positions, head_dim)``: the new
position is one ``slice_update`` per cache and attention is two batched ``matmul``s over
each head's positions (on TensorFlow the keys' transpose costs nothing extra: timed the
same as ``tf.matmul(..., transpose_b=True)``). Training and teacher forcing still call keras-hub's
``TransformerDecoder.call``; tests check that both give the same logits.

Like :mod:`seqtasks.models.hub_attention` it reads private attributes of
``keras_hub.layers.TransformerDecoder`` (checked against keras-hub 0.32.0, the version
pinned in requirements.txt) and of its ``keras.layers.MultiHeadAttention`` sublayers
(``_query_dense``, ``_key_dense``, ``_value_dense``, ``_output_dense``, ``_key_dim``);
a missing one raises an ``AttributeError`` naming it (:func:`check_block`).
"""

from __future__ import annotations

import math

from keras import ops

from seqtasks.models.hub_attention import KERAS_HUB_CHECKED, _private
from seqtasks.models.layers import large_negative

USER = "the cached decoding step seqtasks.models.hub_decoder_step"

BLOCK_ATTRIBUTES = (
    "_self_attention_layer",
    "_self_attention_layer_norm",
    "_feedforward_intermediate_dense",
    "_feedforward_output_dense",
    "_feedforward_layer_norm",
)
CROSS_ATTRIBUTES = ("_cross_attention_layer", "_cross_attention_layer_norm")
ATTENTION_ATTRIBUTES = ("_query_dense", "_key_dense", "_value_dense", "_output_dense", "_key_dim")


def check_block(block, cross: bool = True) -> None:
    """Raise ``AttributeError`` naming the first private attribute :func:`block_step`
    needs that ``block`` (a built keras-hub ``TransformerDecoder``) lacks."""
    names = BLOCK_ATTRIBUTES + (CROSS_ATTRIBUTES if cross else ())
    for name in names:
        _private(block, name, USER)
    for name in ("_self_attention_layer",) + (("_cross_attention_layer",) if cross else ()):
        attention = getattr(block, name)
        for attribute in ATTENTION_ATTRIBUTES:
            if not hasattr(attention, attribute):
                raise AttributeError(
                    f"keras MultiHeadAttention {block.name}.{name} has no attribute "
                    f"{attribute!r} (seqtasks.models.hub_decoder_step was written against "
                    f"keras-hub {KERAS_HUB_CHECKED}; update it for the installed versions)"
                )


def to_head_major(x):
    """``(B, positions, heads, head_dim)`` -> ``(B, heads, positions, head_dim)``."""
    return ops.transpose(x, (0, 2, 1, 3))


def encoder_keys_values(block, encoder_outputs):
    """The cross-attention keys and values of ``block`` over the encoder outputs.

    Args:
        block: a built keras-hub ``TransformerDecoder`` with cross-attention.
        encoder_outputs: float ``(B, S, D)``.

    Returns:
        ``(keys, values)``, each ``(B, heads, S, head_dim)`` in the block's compute dtype.
    """
    attention = block._cross_attention_layer
    return (
        to_head_major(attention._key_dense(encoder_outputs)),
        to_head_major(attention._value_dense(encoder_outputs)),
    )


def empty_cache(block, batch, positions: int, dtype):
    """Zero self-attention keys and values of ``block``: two ``(B, heads, positions,
    head_dim)`` tensors of ``dtype``."""
    attention = block._self_attention_layer
    shape = (batch, attention.num_heads, positions, attention._key_dim)
    return ops.zeros(shape, dtype), ops.zeros(shape, dtype)


def _attend(attention, x, keys, values, mask):
    """Scaled dot-product attention of one query position (Vaswani et al. 2017, sec. 3.2.1)
    with ``attention``'s projections: ``x (B, 1, D)`` over head-major ``keys``/``values``
    ``(B, H, L, Dh)``, ``mask`` bool broadcastable to ``(B, 1, L)`` -> ``(B, 1, D)``."""
    query = attention._query_dense(x)  # (B, 1, H, Dh)
    scale = ops.cast(1.0 / math.sqrt(float(attention._key_dim)), query.dtype)
    query = to_head_major(query * scale)  # (B, H, 1, Dh)
    scores = ops.matmul(query, ops.transpose(keys, (0, 1, 3, 2)))  # (B, H, 1, L)
    # As keras.layers.Softmax with a mask (MultiHeadAttention with dropout): a masked
    # score becomes a large negative number, its weight 0 (a row masked everywhere: 0s).
    mask = mask[:, None, :, :]
    scores = ops.where(mask, scores, large_negative(scores.dtype))
    weights = ops.where(mask, ops.softmax(scores, axis=-1), 0.0)
    context = to_head_major(ops.matmul(weights, values))  # (B, 1, H, Dh)
    return attention._output_dense(context)  # (B, 1, D)


def _sublayer(block, norm, x, attend):
    """A residual sublayer with its layer norm after (post-norm) or before it."""
    if block.normalize_first:
        return x + attend(norm(x))
    return norm(x + attend(x))


def block_step(block, x, keys, values, index, cross=None, encoder_mask=None):
    """One position through ``block`` at inference, with head-major caches.

    Args:
        block: a built keras-hub ``TransformerDecoder``.
        x: float ``(B, 1, D)``, the block's input at position ``index``.
        keys, values: ``(B, H, positions, Dh)``, the self-attention cache; positions up
            to ``index - 1`` are filled.
        index: int or int32 scalar tensor, the position being decoded.
        cross: ``(keys, values)`` from :func:`encoder_keys_values`, or None for a block
            without cross-attention (a decoder-only language model).
        encoder_mask: bool ``(B, S)``, True on real source positions (with ``cross``).

    Returns:
        ``(x (B, 1, D), keys, values)``, the caches with position ``index`` written.
    """
    self_attention = block._self_attention_layer
    positions = ops.shape(keys)[2]
    causal = (ops.arange(positions) <= index)[None, None, :]  # (1, 1, L)

    def attend_self(h):
        nonlocal keys, values
        keys = ops.slice_update(
            keys, [0, 0, index, 0], to_head_major(self_attention._key_dense(h))
        )
        values = ops.slice_update(
            values, [0, 0, index, 0], to_head_major(self_attention._value_dense(h))
        )
        return _attend(self_attention, h, keys, values, causal)

    x = _sublayer(block, block._self_attention_layer_norm, x, attend_self)
    if cross is not None:
        mask = ops.cast(encoder_mask, "bool")[:, None, :]  # (B, 1, S)

        def attend_source(h):
            return _attend(block._cross_attention_layer, h, cross[0], cross[1], mask)

        x = _sublayer(block, block._cross_attention_layer_norm, x, attend_source)

    def feedforward(h):
        return block._feedforward_output_dense(block._feedforward_intermediate_dense(h))

    x = _sublayer(block, block._feedforward_layer_norm, x, feedforward)
    return x, keys, values
