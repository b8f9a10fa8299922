"""One-to-many captioning models: image features in, a sentence out.

A captioner is the translation model's :class:`~seqtasks.models.composed.EncoderDecoder`
with an image-feature encoder (:mod:`seqtasks.models.feature_encoders`) in place of the
token encoder and the same decoders (:mod:`seqtasks.models.decoders`), so teacher
forcing, the cached decoding step, beam search, sampling and rescoring
(:mod:`seqtasks.decoding`) are the same code for both tasks.

- :func:`RNNCaptioner` with ``attention="none"`` is **Show and Tell** (Vinyals et al.
  2015, sec. 3.1): the image conditions only the initial state of the LSTM, here
  through ``tanh(W f + b)`` of the mean-pooled features (as in Karpathy & Fei-Fei 2015
  rather than Vinyals' image-as-first-word input).
- :func:`RNNCaptioner` with ``attention="additive"`` (or ``"multiplicative"``) is
  **Show, Attend and Tell** with soft attention (Xu et al. 2015, sec. 3.1.2): the
  initial state is predicted from the mean of the annotation vectors; each step
  attends over the spatial grid. The context is computed from the current state
  ``h_t`` and combined with it (Lu et al. 2017, sec. 2.1; Luong et al. 2015, eq. 5)
  rather than fed back into the LSTM, so training runs the LSTM over the whole caption
  at once.
- :func:`TransformerCaptioner`: keras-hub ``TransformerDecoder`` blocks whose
  cross-attention attends over the projected grid (plus learned position embeddings
  and optional ``TransformerEncoder`` blocks over it; Vaswani et al. 2017).

Interface (shared with the translation models, see :mod:`seqtasks.models.composed`):
``model({"image_features": f, "decoder_token_ids": y_in})`` -> logits float32
``(batch, length, vocabulary_size)``, where ``f`` is float32 ``(batch, positions,
dim)`` (a feature grid flattened row-major, or ``positions=1`` for a feature vector)
and ``y_in`` int32 ``(batch, length)`` starts with ``[START]``, right-padded with 0;
``init_cache(f, max_length)``, ``decode_step``, ``num_static_cache`` and
``cross_attention(f, y_in)`` -> float32 ``(batch, length, positions)`` (None for Show
and Tell).

Exports written before the composition (``seqtasks>RNNCaptioner``,
``seqtasks>TransformerCaptioner``) load through
:func:`seqtasks.inference.load_keras_model`, which converts them
(:mod:`seqtasks.models.legacy`).
"""

from __future__ import annotations

import keras

from seqtasks.models.attention import NO_ATTENTION
from seqtasks.models.composed import EncoderDecoder
from seqtasks.models.decoders import RNNAttentionDecoder, TransformerDecoderStack
from seqtasks.models.feature_encoders import (
    PooledFeatureEncoder,
    TransformerFeatureEncoder,
    image_parts,
)

__all__ = [
    "CAPTION_MODELS",
    "ImageCaptioner",
    "RNNCaptioner",
    "TransformerCaptioner",
    "build_captioner",
    "image_parts",
]

from seqtasks.choices import CAPTION_MODELS  # noqa: F401 (re-exported)


def RNNCaptioner(  # named as the class it replaced
    vocabulary_size: int,
    embedding_dim: int = 256,
    hidden_dim: int = 512,
    cell: str = "lstm",
    attention: str = "additive",
    dropout: float = 0.3,
    attention_penalty: float = 0.0,
    attention_gate: bool = False,
    backbone=None,
    **kwargs,
) -> EncoderDecoder:
    """Recurrent caption decoder initialised from image features, with or without attention.

    Args:
        vocabulary_size: int, size of the output softmax (caption tokens).
        embedding_dim: int, word embedding size (default 256).
        hidden_dim: int, decoder RNN units (default 512).
        cell: ``"lstm"``, ``"gru"``, ``"mingru"`` or ``"minlstm"`` (see
            :func:`~seqtasks.models.decoders.rnn_class`).
        attention: ``"none"`` (Show and Tell), ``"additive"`` (Show, Attend and
            Tell) or ``"multiplicative"``.
        dropout: float, dropout on word embeddings, image features and the
            output layer's input (default 0.3).
        attention_penalty: float, weight of the doubly stochastic attention penalty in
            training (Xu et al. 2015, sec. 4.2.1; default 0.0 = off).
        attention_gate: bool, the context scaled by a gating scalar predicted from the
            decoder state (Xu et al. 2015, sec. 4.2.1; default False).
        backbone: the trainable top of a partly frozen image encoder, run on the
            inputs first (:func:`~seqtasks.models.image_encoders.split_mobilenet_v2`;
            default None: the inputs are the features).
        **kwargs: ``keras.Model`` arguments (``name``, ...).

    Returns:
        An unbuilt :class:`~seqtasks.models.composed.EncoderDecoder`.

    Raises:
        ValueError: for an unknown ``cell`` or ``attention``.
    """
    decoder = RNNAttentionDecoder(
        vocabulary_size,
        embedding_dim,
        hidden_dim,
        cell,
        attention,
        dropout,
        attention_penalty=attention_penalty,
        attention_gate=attention_gate,
        name="rnn_decoder",
    )
    units = None if attention == NO_ATTENTION else hidden_dim
    encoder = PooledFeatureEncoder(units, dropout, backbone=backbone, name="feature_encoder")
    return EncoderDecoder(encoder, decoder, **kwargs)


def TransformerCaptioner(  # named as the class it replaced
    vocabulary_size: int,
    sequence_length: int,
    num_positions: int,
    hidden_dim: int = 256,
    intermediate_dim: int = 1024,
    num_heads: int = 4,
    num_layers: int = 2,
    num_encoder_layers: int = 0,
    dropout: float = 0.1,
    backbone=None,
    **kwargs,
) -> EncoderDecoder:
    """keras-hub Transformer decoder cross-attending over image features.

    Args:
        vocabulary_size: int.
        sequence_length: int, the longest caption in tokens (``[START]`` and
            ``[END]`` included); sizes the position embeddings and the cache.
        num_positions: int, feature positions per image (25 for a 5x5 grid; with a
            ``backbone``, those of its output grid).
        hidden_dim: int, ``d_model`` (default 256).
        intermediate_dim: int, feed-forward width (default 1024).
        num_heads: int (default 4).
        num_layers: int, decoder blocks (default 2).
        num_encoder_layers: int, ``TransformerEncoder`` blocks over the
            projected grid (default 0: projection + position embedding only).
        dropout: float (default 0.1).
        backbone: as :func:`RNNCaptioner`'s (default None).
        **kwargs: ``keras.Model`` arguments (``name``, ...).

    Returns:
        An unbuilt :class:`~seqtasks.models.composed.EncoderDecoder`.

    Raises:
        ValueError: if ``num_heads`` does not divide ``hidden_dim``, or with a
            ``backbone`` whose output grid has another number of positions.
    """
    if backbone is not None and backbone.positions != num_positions:
        raise ValueError(
            f"num_positions={num_positions}, but the backbone gives "
            f"{backbone.positions} positions per image"
        )
    decoder = TransformerDecoderStack(
        vocabulary_size, sequence_length, hidden_dim, intermediate_dim, num_heads,
        num_layers, dropout, name="transformer_decoder",
    )  # fmt: skip
    encoder = TransformerFeatureEncoder(
        num_positions, hidden_dim, intermediate_dim, num_heads, num_encoder_layers, dropout,
        backbone=backbone, name="feature_encoder",
    )  # fmt: skip
    return EncoderDecoder(encoder, decoder, **kwargs)


def build_captioner(config, vocabulary_size: int, feature_shape, backbone=None):
    """The ``config.model`` decoder (unbuilt) for inputs of ``feature_shape`` ``(P, C)``.

    ``config``: a captioning config (``model``, ``hidden_dim``, ``sequence_length``, ...).
    ``backbone``: the trainable top of the image encoder, run first (default None).
    """
    if config.model == "transformer":
        return TransformerCaptioner(
            vocabulary_size,
            sequence_length=config.sequence_length,
            num_positions=int(feature_shape[0]) if backbone is None else backbone.positions,
            hidden_dim=config.hidden_dim,
            intermediate_dim=config.intermediate_dim,
            num_heads=config.num_heads,
            num_layers=config.num_layers,
            num_encoder_layers=config.num_encoder_layers,
            dropout=config.dropout,
            backbone=backbone,
            name="decoder",
        )
    return RNNCaptioner(
        vocabulary_size,
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        cell=config.cell,
        attention=NO_ATTENTION if config.model == "lstm" else config.attention,
        dropout=config.dropout,
        attention_penalty=config.attention_penalty,
        attention_gate=config.attention_gate,
        backbone=backbone,
        name="decoder",
    )


class ImageCaptioner(keras.Model):
    """Image encoder + caption decoder trained together (``encoder=cnn`` or fine-tuning).

    ``model({"images": float32 (B, S, S, 3), "decoder_token_ids": int32 (B, T)})``
    -> logits ``(B, T, V)``. Decoding runs the encoder once and then the
    decoder's own cached steps (see :class:`seqtasks.generation.Generator`).
    """

    def __init__(self, image_encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.image_encoder = image_encoder
        self.decoder = decoder

    def call(self, inputs, training=None):
        features = self.image_encoder(inputs["images"], training=training)
        return self.decoder(
            {"image_features": features, "decoder_token_ids": inputs["decoder_token_ids"]},
            training=training,
        )
