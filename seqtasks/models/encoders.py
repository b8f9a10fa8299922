"""Sequence encoders: token ids ``(B, T)`` to states ``(B, T, D)`` plus a summary ``(B, D)``.

Every encoder follows one contract, so heads and decoders do not care which
one they get (:func:`encode`):

- input: int32 token ids ``(batch_size, sequence_length)``, right-padded
  with ``[PAD]`` = 0;
- output: :class:`EncoderOutputs` with ``sequence`` (float
  ``(batch_size, sequence_length, hidden)``), ``padding_mask`` (bool
  ``(batch_size, sequence_length)``) and ``summary`` (float
  ``(batch_size, hidden)``: the final recurrent state, or the masked mean
  for the Transformer).

Kinds:

- ``rnn``: stacked ``SimpleRNN``; ``activation="relu"`` uses identity-
  initialised recurrent weights (IRNN; Le, Jaitly & Hinton 2015, "A Simple
  Way to Initialize Recurrent Networks of Rectified Linear Units", sec. 2).
- ``lstm``: stacked ``LSTM`` (Hochreiter & Schmidhuber 1997).
- ``gru``: stacked ``GRU`` (Cho et al. 2014), ``reset_after=True``.
- ``bilstm``: stacked ``Bidirectional(LSTM)`` (Schuster & Paliwal 1997);
  states are the concatenation of both directions (``2 * hidden_dim``).
- ``transformer``: keras-hub ``TokenAndPositionEmbedding`` followed by
  ``TransformerEncoder`` blocks (Vaswani et al. 2017, sec. 3.1).
- ``mingru``, ``minlstm``: stacked :class:`~seqtasks.models.min_rnn.MinGRU` /
  :class:`~seqtasks.models.min_rnn.MinLSTM` (Feng et al. 2024, sec. 3), whose gates
  read the input only, so a whole sequence is one scan; ``bimingru`` and
  ``biminlstm`` wrap them in ``Bidirectional`` (``2 * hidden_dim``). With
  ``residual_blocks`` each layer is the paper's block instead
  (:class:`~seqtasks.models.min_rnn_block.MinRNNBlock`: normalisation, the recurrence,
  a residual connection, a feed-forward network), and a final layer
  normalisation follows the stack (pre-normalisation, Xiong et al. 2020).

A recurrent encoder may read the embeddings through a short convolution first
(``conv_kernel_size``, :class:`~seqtasks.models.layers.MaskedConvolution`).

Masking: recurrent layers get the Keras mask from ``Embedding(mask_zero=True)``
and skip padded steps; the Transformer gets an explicit ``padding_mask``.
With right padding the LSTM/GRU settings used here (tanh/sigmoid
activations, no recurrent dropout, ``unroll=False``, ``use_bias=True``) keep
Keras' cuDNN kernel eligible on GPUs.
"""

from __future__ import annotations

import dataclasses
import logging

import keras
import keras_hub
from keras import ops

from seqtasks.choices import ENCODERS, MIN_ENCODERS, RNN_ACTIVATIONS  # noqa: F401
from seqtasks.models.layers import MaskedConvolution, MaskedPooling
from seqtasks.models.min_rnn import MinGRU, MinLSTM
from seqtasks.models.min_rnn_block import MinRNNBlock

log = logging.getLogger(__name__)


@dataclasses.dataclass
class EncoderOutputs:
    """Symbolic outputs of :func:`encode` (see the module docstring for shapes)."""

    sequence: keras.KerasTensor
    padding_mask: keras.KerasTensor
    summary: keras.KerasTensor


def encode(
    token_ids,
    *,
    kind: str,
    vocabulary_size: int,
    sequence_length: int,
    embedding_dim: int = 128,
    hidden_dim: int = 64,
    num_layers: int = 1,
    num_heads: int = 4,
    intermediate_dim: int = 256,
    dropout: float = 0.0,
    embedding_dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    activation: str = "tanh",
    residual_blocks: bool = False,
    conv_kernel_size: int = 0,
) -> EncoderOutputs:
    """Apply an encoder of ``kind`` to symbolic ``token_ids``.

    Args:
        token_ids: int32 ``keras.Input`` of shape ``(batch_size, sequence_length)``.
        kind: one of ``rnn, lstm, gru, bilstm, transformer, mingru, minlstm, bimingru,
            biminlstm``.
        vocabulary_size: number of token ids, reserved ones included.
        sequence_length: longest sequence the model accepts (positions of the
            Transformer's position embedding; unused by recurrent encoders).
        embedding_dim: size of the learned token embeddings (default 128).
        hidden_dim: recurrent units per direction (default 64); the
            Transformer's model width is ``embedding_dim``.
        num_layers: stacked recurrent layers or Transformer blocks (default 1).
        num_heads: attention heads of each Transformer block (default 4).
        intermediate_dim: feed-forward width of each Transformer block or residual
            block (default 256).
        dropout: dropout rate between layers and inside Transformer blocks.
        embedding_dropout: rate at which whole embedding channels are dropped
            for a sequence (``SpatialDropout1D``; cf. the embedding dropout of
            Gal & Ghahramani 2016, sec. 4). Default 0 (off).
        recurrent_dropout: dropout on recurrent state (default 0). Anything
            above 0 disables the cuDNN kernel of LSTM/GRU layers, so it is off
            by default; a warning naming the config field is logged when set
            (see :func:`cudnn_blockers`).
        activation: ``tanh`` (default) or ``relu`` for ``rnn`` (IRNN).
        residual_blocks: ``mingru``, ``minlstm``, ``bimingru``, ``biminlstm`` only: stack
            :class:`~seqtasks.models.min_rnn_block.MinRNNBlock` layers (``dropout`` inside
            each block) and normalise the last one's output (default ``False``).
        conv_kernel_size: recurrent kinds only: a
            :class:`~seqtasks.models.layers.MaskedConvolution` of this width (centred,
            residual, SiLU) over the embeddings before the first recurrent layer, so that
            gates reading one input see its neighbours too; 0 (default): none.

    Returns:
        :class:`EncoderOutputs`.

    Raises:
        ValueError: for an unknown ``kind`` or ``activation``, a non-tanh
            activation with a gated cell, ``residual_blocks`` with another kind, or
            ``conv_kernel_size`` with the Transformer.
    """
    if kind not in ENCODERS:
        raise ValueError(f"`kind` must be one of {ENCODERS}. Received: kind={kind!r}")
    if activation not in RNN_ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {RNN_ACTIVATIONS}. Received: {activation!r}")
    if activation != "tanh" and kind != "rnn":
        raise ValueError(
            f"`activation={activation!r}` applies to kind='rnn' only; gated cells keep tanh "
            f"so the cuDNN kernel stays eligible. Received: kind={kind!r}"
        )
    if residual_blocks and kind not in MIN_ENCODERS:
        raise ValueError(f"`residual_blocks` applies to {MIN_ENCODERS}. Received: kind={kind!r}")
    if conv_kernel_size and kind == "transformer":
        raise ValueError(f"`conv_kernel_size` applies to recurrent kinds. Received: kind={kind!r}")
    padding_mask = ops.not_equal(token_ids, 0)  # (B, T) bool
    if kind == "transformer":
        x = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, embedding_dim, name="embedding"
        )(token_ids)  # (B, T, E)
        x = _embedding_dropout(x, embedding_dropout)
        for i in range(num_layers):
            x = keras_hub.layers.TransformerEncoder(
                intermediate_dim, num_heads, dropout=dropout, name=f"transformer_encoder_{i}"
            )(x, padding_mask=padding_mask)  # (B, T, E)
        summary = MaskedPooling("mean", name="encoder_summary")(x, padding_mask=padding_mask)
        return EncoderOutputs(x, padding_mask, summary)

    if recurrent_dropout > 0 and kind in MIN_KINDS:
        raise ValueError(
            f"`recurrent_dropout` needs a recurrent weight matrix; {kind} has none (its "
            f"gates read the input only). Received: recurrent_dropout={recurrent_dropout}"
        )
    if recurrent_dropout > 0 and kind != "rnn":  # SimpleRNN has no cuDNN kernel anyway
        log.warning(
            "config field 'recurrent_dropout'=%s disables the cuDNN kernel for %s on GPU; "
            "training falls back to the generic, several times slower kernel "
            "(recurrent_dropout=0 keeps it)",
            recurrent_dropout,
            "GRU" if kind == "gru" else "LSTM",
        )
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=True, name="embedding")(
        token_ids
    )  # (B, T, E), Keras mask attached
    x = _embedding_dropout(x, embedding_dropout)
    if conv_kernel_size:
        x = MaskedConvolution(conv_kernel_size, name="embedding_convolution")(x)  # (B, T, E)
    if residual_blocks:
        for i in range(num_layers):
            x, summary = MinRNNBlock(
                hidden_dim,
                kind.removeprefix("bi"),
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                return_state=True,
                bidirectional=kind.startswith("bi"),
                name=f"{kind}_{i}",
            )(x)  # (B, T, H) or (B, T, 2H); summary (B, H) or (B, 2H)
        x = keras.layers.LayerNormalization(epsilon=1e-5, name="encoder_norm")(x)
        return EncoderOutputs(x, padding_mask, summary)
    states = []
    for i in range(num_layers):
        if i > 0 and dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
        layer = _recurrent_layer(
            kind, hidden_dim, activation, recurrent_dropout, name=f"{kind}_{i}"
        )
        x, *states = layer(x)  # (B, T, H) or (B, T, 2H) for bilstm
    summary = _final_state(kind, states)
    return EncoderOutputs(x, padding_mask, summary)


def cudnn_blockers(layer) -> list[str]:
    """The settings of a Keras ``LSTM``/``GRU`` layer that rule out its cuDNN kernel.

    Keras 3 runs an LSTM/GRU on cuDNN (TensorFlow backend, GPU) only with
    ``activation="tanh"``, ``recurrent_activation="sigmoid"``,
    ``recurrent_dropout=0``, ``unroll=False``, ``use_bias=True``, for the GRU
    ``reset_after=True``, ``use_cudnn`` not ``False``, and a right-padded mask
    (the pipelines pad on the right; that part is checked at run time).

    Args:
        layer: a ``keras.layers.LSTM`` or ``GRU`` (a ``Bidirectional`` wrapper:
            pass its ``forward_layer`` and ``backward_layer``).

    Returns:
        ``"name=value"`` for each disqualifying setting; empty when eligible.
    """
    cell = layer.cell
    blockers = []
    for name, wanted in (
        ("activation", keras.activations.tanh),
        ("recurrent_activation", keras.activations.sigmoid),
    ):
        function = getattr(cell, name)
        if function is not wanted:
            blockers.append(f"{name}={getattr(function, '__name__', function)}")
    if cell.recurrent_dropout:
        blockers.append(f"recurrent_dropout={cell.recurrent_dropout}")
    if layer.unroll:
        blockers.append("unroll=True")
    if not cell.use_bias:
        blockers.append("use_bias=False")
    if isinstance(layer, keras.layers.GRU) and not cell.reset_after:
        blockers.append("reset_after=False")
    if layer.use_cudnn is False:
        blockers.append("use_cudnn=False")
    return blockers


def _embedding_dropout(x, rate):
    if rate <= 0:
        return x
    return keras.layers.SpatialDropout1D(rate, name="embedding_dropout")(x)  # keeps the mask


MIN_KINDS = {"mingru": MinGRU, "minlstm": MinLSTM, "bimingru": MinGRU, "biminlstm": MinLSTM}


def _recurrent_layer(kind, hidden_dim, activation, recurrent_dropout, name):
    if kind in MIN_KINDS:
        cls = MIN_KINDS[kind]
        if kind.startswith("bi"):
            layer = cls(hidden_dim, return_sequences=True, return_state=True)
            return keras.layers.Bidirectional(layer, name=name)
        return cls(hidden_dim, return_sequences=True, return_state=True, name=name)
    common = {
        "return_sequences": True,
        "return_state": True,
        "recurrent_dropout": recurrent_dropout,
    }
    if kind == "rnn":
        initializer = "identity" if activation == "relu" else "orthogonal"
        return keras.layers.SimpleRNN(
            hidden_dim,
            activation=activation,
            recurrent_initializer=initializer,
            name=name,
            **common,
        )
    if kind == "gru":
        return keras.layers.GRU(hidden_dim, name=name, **common)
    if kind == "lstm":
        return keras.layers.LSTM(hidden_dim, name=name, **common)
    return keras.layers.Bidirectional(keras.layers.LSTM(hidden_dim, **common), name=name)


def _final_state(kind, states):
    """The last hidden state h (both directions for bilstm, bimingru, biminlstm),
    ``(B, H)`` or ``(B, 2H)``."""
    if kind == "lstm":
        return states[0]  # [h, c]
    if kind == "bilstm":
        return ops.concatenate([states[0], states[2]], axis=-1)  # [fh, fc, bh, bc]
    if kind in ("bimingru", "biminlstm"):
        return ops.concatenate([states[0], states[1]], axis=-1)  # [fh, bh]
    return states[0]  # [h]
