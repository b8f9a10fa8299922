"""Attention of a decoder over encoder states with a padding mask (``keras.ops`` only).

:class:`SourceAttention` is the attention of the RNN decoders
(:class:`seqtasks.models.decoders.RNNAttentionDecoder`): additive scores (Bahdanau et
al. 2014, sec. 3.1 and appendix A.1.2) or multiplicative "general" scores (Luong et al.
2015, sec. 3.1). The Transformer decoders use keras-hub's multi-head attention instead.
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.choices import ATTENTION_SCORES  # noqa: F401 (re-exported)
from seqtasks.models.layers import large_negative

NO_ATTENTION = "none"


def source_mask(encoder_token_ids):
    """bool ``(B, S)``: True on real tokens (id != 0); position 0 always counts as real.

    An all-padding row (an empty input) would otherwise give a fully masked
    RNN/attention row, which the cuDNN kernel rejects inside a graph; with
    position 0 unmasked it encodes one padding embedding instead.
    """
    mask = ops.not_equal(encoder_token_ids, 0)
    first = ops.arange(ops.shape(encoder_token_ids)[1]) == 0
    return ops.logical_or(mask, first[None, :])


def doubly_stochastic_penalty(weights, target_mask, source_mask):
    """Xu et al. 2015's doubly stochastic attention regulariser, per target token.

    Each step's weights sum to 1 over the source positions; the penalty pushes each
    position's weights summed over the output towards 1 as well, so that every part of
    the image (or source) is attended to at some point ("Show, Attend and Tell",
    sec. 4.2.1: ``sum_i (1 - sum_t alpha_ti) ** 2``). Divided here by the number of
    target tokens, to sit beside the per-token mean cross-entropy.

    Args:
        weights: float ``(batch, target_length, source_length)``, attention weights.
        target_mask: bool ``(batch, target_length)``, True on real (non-padding) steps.
        source_mask: bool ``(batch, source_length)``, True on real source positions.

    Returns:
        float32 scalar: the mean over the batch of
        ``sum_i (1 - sum_t alpha_ti) ** 2 / |y|`` over real ``i`` and ``t``.
    """
    weights = ops.cast(weights, "float32")
    target = ops.cast(target_mask, "float32")
    source = ops.cast(source_mask, "float32")
    totals = ops.sum(weights * target[:, :, None], axis=1)  # (B, S)
    per_row = ops.sum(ops.square(1.0 - totals) * source, axis=1)  # (B,)
    return ops.mean(per_row / ops.maximum(ops.sum(target, axis=1), 1.0))


@keras.saving.register_keras_serializable(package="seqtasks")
class SourceAttention(keras.layers.Layer):
    """Attention of decoder states over encoder states with a padding mask.

    Scores ``additive``: ``v^T tanh(W_q q + W_k k)`` (Bahdanau et al. 2014, A.1.2);
    ``multiplicative``: ``q^T W k`` (Luong et al. 2015, sec. 3.1, "general").
    Weights are a softmax over the unmasked source positions.

    Args:
        units: int. Size of the additive score's hidden layer (ignored for
            multiplicative scores, whose ``W`` maps the key to the query size).
        score: ``"additive"`` (default) or ``"multiplicative"``.

    Call arguments:
        query: float ``(batch, target_length, query_dim)``.
        keys: float ``(batch, source_length, key_dim)``.
        keys_mask: bool ``(batch, source_length)``, True on real tokens.

    Returns:
        ``(context (batch, target_length, key_dim), weights (batch, target_length,
        source_length))``.

    Raises:
        ValueError: for another ``score``.
    """

    def __init__(self, units: int, score: str = "additive", **kwargs):
        super().__init__(**kwargs)
        if score not in ATTENTION_SCORES:
            raise ValueError(f"score must be one of {ATTENTION_SCORES}; Received: score={score!r}")
        self.units = units
        self.score = score
        self.supports_masking = True  # masks arrive with the inputs; keys_mask is used instead

    def compute_mask(self, *args, **kwargs):
        return None

    def build(self, query_shape, keys_shape=None, keys_mask_shape=None):
        if self.score == "additive":
            self.query_dense = keras.layers.Dense(self.units, use_bias=False, name="query")
            self.key_dense = keras.layers.Dense(self.units, use_bias=False, name="key")
            self.v = keras.layers.Dense(1, use_bias=False, name="v")
            self.query_dense.build(query_shape)
            self.key_dense.build(keys_shape)
            self.v.build((None, None, None, self.units))
        else:
            self.key_dense = keras.layers.Dense(query_shape[-1], use_bias=False, name="key")
            self.key_dense.build(keys_shape)

    def call(self, query, keys, keys_mask):
        keys_projected = self.key_dense(keys)  # (B, S, U) or (B, S, Q)
        if self.score == "additive":
            q = self.query_dense(query)[:, :, None, :]  # (B, T, 1, U)
            k = keys_projected[:, None, :, :]  # (B, 1, S, U)
            scores = ops.squeeze(self.v(ops.tanh(q + k)), -1)  # (B, T, S)
        else:
            scores = ops.einsum("btq,bsq->bts", query, keys_projected)  # (B, T, S)
        mask = ops.cast(keys_mask, "bool")[:, None, :]  # (B, 1, S)
        scores = ops.where(mask, scores, ops.cast(large_negative(scores.dtype), scores.dtype))
        weights = ops.softmax(scores, axis=-1)
        context = ops.einsum("bts,bsd->btd", weights, keys)  # (B, T, key_dim)
        return context, weights

    def get_config(self):
        return {**super().get_config(), "units": self.units, "score": self.score}
