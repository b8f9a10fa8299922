"""One of two places seqtasks reads private attributes of keras-hub: attention scores for plots
(the other: :mod:`seqtasks.models.hub_decoder_step`, the cached decoding step).

``plot-attention`` draws the cross-attention weights of the last Transformer decoder
block. keras-hub's ``TransformerDecoder`` has no public way to return them: its
``call`` returns the hidden states (and caches) only, and its attention sublayers are
keras-hub ``CachedMultiHeadAttention`` objects whose ``call`` drops the scores that
``keras.layers.MultiHeadAttention.call(..., return_attention_scores=True)`` computes.
:func:`decoder_cross_attention_scores` therefore recomputes the block's self-attention
sublayer and then its cross-attention with the block's own weights, reaching for these
private attributes of ``keras_hub.layers.TransformerDecoder`` (checked against
keras-hub 0.32.0, the version pinned in requirements.txt):

- ``_self_attention_layer``: the self-attention sublayer (a ``MultiHeadAttention``);
- ``_self_attention_layer_norm``: the ``LayerNormalization`` after it (post-norm);
- ``_cross_attention_layer``: the cross-attention sublayer (a ``MultiHeadAttention``).

It calls the public ``keras.layers.MultiHeadAttention.call`` on the two sublayers, so that
the cached subclass's override (which has no ``return_attention_scores``) is bypassed.
If keras-hub renames one of them the adapter raises an ``AttributeError`` naming it
(tested with a monkeypatched block) instead of drawing wrong weights.
"""

from __future__ import annotations

import keras
from keras import ops

KERAS_HUB_CHECKED = "0.32.0"  # the keras-hub version these private names were read from
PRIVATE_ATTRIBUTES = (
    "_self_attention_layer",
    "_self_attention_layer_norm",
    "_cross_attention_layer",
)


def _private(block, name: str, user: str = "the attention-score adapter seqtasks.models.hub_attention"):
    layer = getattr(block, name, None)
    if layer is None:
        raise AttributeError(
            f"keras_hub TransformerDecoder {block.name!r} has no attribute {name!r} ({user} "
            f"was written against keras-hub {KERAS_HUB_CHECKED}; update it for the installed "
            f"keras-hub)"
        )
    return layer


def decoder_cross_attention_scores(
    block, decoder_sequence, encoder_sequence, decoder_padding_mask, encoder_padding_mask
):
    """Cross-attention weights of one keras-hub ``TransformerDecoder`` block, per head.

    Recomputes the block's causal self-attention sublayer, its post-norm
    (``normalize_first=False``, keras-hub's default, Vaswani et al. 2017, sec. 3.1)
    and its cross-attention, at inference (no dropout).

    Args:
        block: a built ``keras_hub.layers.TransformerDecoder`` with ``normalize_first=False``.
        decoder_sequence: float ``(B, T, D)``, the block's input.
        encoder_sequence: float ``(B, S, D)``, the encoder outputs.
        decoder_padding_mask: bool ``(B, T)``, True on real target tokens.
        encoder_padding_mask: bool ``(B, S)``, True on real source positions.

    Returns:
        float ``(B, heads, T, S)``: a softmax over ``S`` per row, 0 on masked source
        positions.

    Raises:
        AttributeError: naming the private attribute if keras-hub no longer has it.
        ValueError: for a pre-norm block (``normalize_first=True``).
    """
    self_attention, self_norm, cross_attention = (
        _private(block, name) for name in PRIVATE_ATTRIBUTES
    )
    if block.normalize_first:
        raise ValueError(f"{block.name}: only post-norm blocks (normalize_first=False)")
    length = ops.shape(decoder_sequence)[1]
    decoder_padding_mask = ops.cast(decoder_padding_mask, "bool")
    causal = ops.tril(ops.ones((length, length), "bool"))[None]
    self_mask = ops.logical_and(causal, decoder_padding_mask[:, None, :])  # (B, T, T)
    attended = keras.layers.MultiHeadAttention.call(
        self_attention, query=decoder_sequence, value=decoder_sequence, attention_mask=self_mask
    )
    x = self_norm(decoder_sequence + attended)
    cross_mask = ops.repeat(ops.cast(encoder_padding_mask, "bool")[:, None, :], length, axis=1)
    _, scores = keras.layers.MultiHeadAttention.call(
        cross_attention,
        query=x,
        value=encoder_sequence,
        attention_mask=cross_mask,
        return_attention_scores=True,
    )
    return scores  # (B, heads, T, S)
