"""Encoder-decoder (many-to-many) translation models with teacher forcing and a cached
decoding step.

Both architectures are one :class:`seqtasks.models.composed.EncoderDecoder` (whose
docstring gives the interface decoding, training, export and the plots use) composed
of a token encoder and a decoder:

- :func:`TransformerSeq2Seq`: keras-hub ``TokenAndPositionEmbedding``,
  ``TransformerEncoder`` and ``TransformerDecoder`` stacks (Vaswani et al. 2017,
  sec. 3), post-layer-norm as in the paper
  (:class:`~seqtasks.models.token_encoders.TransformerTokenEncoder`,
  :class:`~seqtasks.models.decoders.TransformerDecoderStack`).
- :func:`RNNAttentionSeq2Seq`: a bidirectional LSTM/GRU encoder and an LSTM/GRU
  decoder (or minGRU/minLSTM in both, ``cell="mingru"``/``"minlstm"``) whose output attends over the encoder states, with additive scores
  (Bahdanau et al. 2014, sec. 3.1 and appendix A.1.2) or multiplicative ("general")
  scores (Luong et al. 2015, sec. 3.1), followed by Luong's attentional layer
  ``tanh(W_c [c_t; h_t])`` (eq. 5)
  (:class:`~seqtasks.models.token_encoders.BidirectionalRNNEncoder`,
  :class:`~seqtasks.models.decoders.RNNAttentionDecoder`).

Exports written before the composition (registered classes ``seqtasks>
RNNAttentionSeq2Seq`` and ``seqtasks>TransformerSeq2Seq``) load through
:func:`seqtasks.inference.load_keras_model`, which converts them
(:mod:`seqtasks.models.legacy`).
"""

from __future__ import annotations

import keras

from seqtasks.choices import SEQ2SEQ_MODELS  # noqa: F401 (re-exported)
from seqtasks.models.attention import (
    ATTENTION_SCORES,
    NO_ATTENTION,
    SourceAttention,
)
from seqtasks.models.composed import EncoderDecoder
from seqtasks.models.decoders import RNN_CELLS, RNNAttentionDecoder, TransformerDecoderStack
from seqtasks.models.token_encoders import (
    BidirectionalRNNEncoder,
    TransformerTokenEncoder,
    text_parts,
)

__all__ = [
    "ATTENTION_SCORES",
    "FREEZE_CHOICES",
    "NO_ATTENTION",
    "RNN_CELLS",
    "SEQ2SEQ_MODELS",
    "RNNAttentionSeq2Seq",
    "SourceAttention",
    "TransformerSeq2Seq",
    "build_seq2seq",
    "freeze",
    "text_parts",
]

FREEZE_CHOICES = ("encoder", "embeddings", "none")


def RNNAttentionSeq2Seq(  # named as the class it replaced
    source_vocabulary_size: int,
    target_vocabulary_size: int,
    embedding_dim: int = 256,
    hidden_dim: int = 256,
    num_layers: int = 1,
    cell: str = "lstm",
    attention: str = "additive",
    dropout: float = 0.2,
    **kwargs,
) -> EncoderDecoder:
    """Bidirectional LSTM/GRU encoder, LSTM/GRU decoder with attention (see module docstring).

    Args:
        source_vocabulary_size: int, source ids are in ``[0, source_vocabulary_size)``.
        target_vocabulary_size: int, size of the output softmax.
        embedding_dim: int, token embedding size (default 256).
        hidden_dim: int, units of each encoder direction (default 256; the decoder has
            ``2 * hidden_dim`` units to match the concatenated bidirectional states).
        num_layers: int, stacked bidirectional encoder layers (default 1).
        cell: ``"lstm"``, ``"gru"``, ``"mingru"`` or ``"minlstm"`` (the last two: Feng
            et al. 2024, sec. 3, in the encoder and the decoder).
        attention: ``"additive"`` (Bahdanau), ``"multiplicative"`` (Luong) or ``"none"``.
        dropout: float, dropout on embeddings and the attentional layer (default 0.2).
        **kwargs: ``keras.Model`` arguments (``name``, ...).

    Returns:
        An unbuilt :class:`~seqtasks.models.composed.EncoderDecoder`.

    Raises:
        ValueError: for an unknown ``cell`` or ``attention``.
    """
    encoder = BidirectionalRNNEncoder(
        source_vocabulary_size, embedding_dim, hidden_dim, num_layers, cell, dropout,
        name="token_encoder",
    )  # fmt: skip
    decoder = RNNAttentionDecoder(
        target_vocabulary_size, embedding_dim, 2 * hidden_dim, cell, attention, dropout,
        name="rnn_decoder",
    )  # fmt: skip
    return EncoderDecoder(encoder, decoder, **kwargs)


def TransformerSeq2Seq(  # named as the class it replaced
    source_vocabulary_size: int,
    target_vocabulary_size: int,
    sequence_length: int,
    hidden_dim: int = 256,
    intermediate_dim: int = 512,
    num_heads: int = 4,
    num_layers: int = 3,
    dropout: float = 0.1,
    tie_embeddings: bool = False,
    **kwargs,
) -> EncoderDecoder:
    """Transformer encoder-decoder from keras-hub layers (Vaswani et al. 2017, sec. 3).

    Args:
        source_vocabulary_size: int.
        target_vocabulary_size: int.
        sequence_length: int, the longest source and target sequence (sizes the
            learned position embeddings and the decoding cache).
        hidden_dim: int, model width ``d_model`` (default 256).
        intermediate_dim: int, feed-forward width (default 512).
        num_heads: int, attention heads (default 4).
        num_layers: int, encoder blocks and decoder blocks (default 3 each).
        dropout: float (default 0.1).
        tie_embeddings: bool, one matrix for the source embedding, the target embedding
            and the output layer (three-way tying, Press & Wolf 2017, sec. 3; Vaswani et
            al. 2017, sec. 3.4); needs one joint vocabulary (default False).
        **kwargs: ``keras.Model`` arguments (``name``, ...).

    Returns:
        An unbuilt :class:`~seqtasks.models.composed.EncoderDecoder`.

    Raises:
        ValueError: if ``num_heads`` does not divide ``hidden_dim``, or tying with two
            vocabulary sizes.
    """
    decoder = TransformerDecoderStack(
        target_vocabulary_size, sequence_length, hidden_dim, intermediate_dim, num_heads,
        num_layers, dropout, tie_embeddings=tie_embeddings, name="transformer_decoder",
    )  # fmt: skip
    encoder = TransformerTokenEncoder(
        source_vocabulary_size, sequence_length, hidden_dim, intermediate_dim, num_heads,
        num_layers, dropout, name="token_encoder",
    )  # fmt: skip
    return EncoderDecoder(encoder, decoder, share_embeddings=tie_embeddings, **kwargs)


def freeze(model: keras.Model, part: str) -> list[str]:
    """Make ``part`` of a seq2seq or captioning model non-trainable (fine-tuning): the
    layers its ``freezable_parts()`` names for ``part``.

    Translation models (:func:`TransformerSeq2Seq`, :func:`RNNAttentionSeq2Seq`):

    - ``encoder``: the source embedding and every encoder layer (the decoder,
      its cross-attention and, for RNN models, the bridge to the decoder's
      initial state keep training);
    - ``embeddings``: the source and target token embeddings (Transformers:
      with their position embeddings).

    Captioning decoders (:mod:`seqtasks.models.captioning`, whose encoder
    input is ``image_features``):

    - ``encoder``: the image side of the decoder: the fine-tuned image-encoder
      blocks (``backbone_top``, with ``fine_tune_blocks``), the feature projection (and
      Transformer: its normalisation, position embedding and encoder blocks;
      RNN: the bridge from the mean feature to the initial state);
    - ``embeddings``: the word embedding (Transformer: with positions) and the
      feature position embedding.

    ``none`` freezes nothing.

    Returns:
        Names of the layers made non-trainable that hold weights, in model order.

    Raises:
        ValueError: for another ``part``.
    """
    if part not in FREEZE_CHOICES:
        raise ValueError(f"`part` must be one of {FREEZE_CHOICES}. Received: part={part!r}")
    if part == "none":
        return []
    names = set(model.freezable_parts()[part])
    frozen = []
    for layer in model.layers:
        if layer.name in names:
            layer.trainable = False
            if layer.weights:
                frozen.append(layer.name)
    return frozen


def build_seq2seq(config, source_vocabulary_size: int, target_vocabulary_size: int):
    """The ``config.model`` encoder-decoder (unbuilt); ``config``: a translation config
    (``model``, ``hidden_dim``, ``num_layers``, ...)."""
    if config.model == "transformer":
        return TransformerSeq2Seq(
            source_vocabulary_size,
            target_vocabulary_size,
            sequence_length=config.sequence_length,
            hidden_dim=config.hidden_dim,
            intermediate_dim=config.intermediate_dim,
            num_heads=config.num_heads,
            num_layers=config.num_layers or 3,
            dropout=config.dropout,
            tie_embeddings=getattr(config, "tie_embeddings", False),
        )
    return RNNAttentionSeq2Seq(
        source_vocabulary_size,
        target_vocabulary_size,
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        num_layers=config.num_layers or 1,
        cell=config.cell,
        attention=config.attention,
        dropout=config.dropout,
    )
