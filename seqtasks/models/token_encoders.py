"""The encoder halves of the translation models: source token ids in, states out.

Each returns ``encoded = (outputs (B, S, D), mask bool (B, S), summaries)`` for a decoder
of :mod:`seqtasks.models.decoders` (``summaries``: the RNN decoder's initial-state
inputs, empty for Transformers), and names the model parts fine-tuning can freeze.

- :class:`BidirectionalRNNEncoder`: stacked bidirectional LSTM/GRU (or minGRU/minLSTM)
  layers (Bahdanau et al. 2014, sec. 3.2); the decoder starts from the final forward and backward states.
- :class:`TransformerTokenEncoder`: keras-hub ``TokenAndPositionEmbedding`` and
  ``TransformerEncoder`` blocks (Vaswani et al. 2017, sec. 3.1), post-layer-norm.

Inputs: int32 ``(B, S)`` right-padded with 0 (see :func:`seqtasks.models.attention.
source_mask` for the all-padding row).
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.models.attention import source_mask
from seqtasks.models.decoders import rnn_class
from seqtasks.models.object_sharing import build_bidirectional


def text_parts(model) -> dict[str, list[str]]:
    """Layer names of each part of a translation model that fine-tuning can freeze (see
    :func:`seqtasks.models.seq2seq.freeze`): ``encoder`` (the source embedding and every
    encoder layer; the decoder, its cross-attention and the bridge to its state keep
    training) and ``embeddings`` (the source and target token embeddings)."""
    encoder = [
        layer.name
        for layer in model.layers
        if layer.name == "source_embedding" or layer.name.startswith("encoder_")
    ]
    return {"encoder": encoder, "embeddings": ["source_embedding", "target_embedding"]}


class _TokenEncoder(keras.layers.Layer):
    """What the two token encoders share: their input name and freezable parts."""

    input_name = "encoder_token_ids"  # the key of this input in the model's call()

    def model_parts(self, model) -> dict[str, list[str]]:
        """``model``'s freezable parts: :func:`text_parts`."""
        return text_parts(model)

    def call(self, token_ids, training=None):
        return self.encode(token_ids, training)


@keras.saving.register_keras_serializable(package="seqtasks")
class BidirectionalRNNEncoder(_TokenEncoder):
    """Source embedding and stacked bidirectional LSTM/GRU layers.

    Args:
        vocabulary_size: int, source ids are in ``[0, vocabulary_size)``.
        embedding_dim: int (default 256).
        hidden_dim: int, units of each direction (default 256); outputs have ``2 *
            hidden_dim`` features.
        num_layers: int, stacked bidirectional layers (default 1).
        cell: ``"lstm"`` (default), ``"gru"``, ``"mingru"`` or ``"minlstm"`` (see
            :func:`~seqtasks.models.decoders.rnn_class`).
        dropout: float, on the source embeddings (default 0.2).

    ``encode`` returns one summary per RNN state (LSTM: h and c; the others: h), each the
    final forward and backward states concatenated, float ``(B, 2 * hidden_dim)``.

    Raises:
        ValueError: for an unknown ``cell``.
    """

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int = 256,
        hidden_dim: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        dropout: float = 0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        rnn = rnn_class(cell)
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.cell = cell
        self.dropout = dropout
        self.source_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, name="source_embedding"
        )
        self.encoder_layers = [
            build_bidirectional(
                rnn(hidden_dim, return_sequences=True, return_state=True), name=f"encoder_{i}"
            )
            for i in range(num_layers)
        ]
        self.embedding_dropout = keras.layers.Dropout(dropout, name="source_dropout")
        self.built = True  # the sublayers build on their first call

    def parts(self) -> list:
        """The sublayers in creation order."""
        return [self.source_embedding, *self.encoder_layers, self.embedding_dropout]

    def encode(self, token_ids, training=None):
        """int32 ``(B, S)`` -> ``(outputs (B, S, 2H), mask (B, S), summaries)``."""
        mask = source_mask(token_ids)  # (B, S)
        x = self.embedding_dropout(self.source_embedding(token_ids), training=training)
        states = None
        for layer in self.encoder_layers:
            x, *states = layer(x, mask=mask, training=training)  # (B, S, 2H)
        # Bidirectional returns forward states then backward states.
        half = len(states) // 2
        summaries = [ops.concatenate([states[i], states[half + i]], axis=-1) for i in range(half)]
        return x, mask, summaries

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="seqtasks")
class TransformerTokenEncoder(_TokenEncoder):
    """Source token+position embedding and keras-hub ``TransformerEncoder`` blocks.

    Args:
        vocabulary_size: int.
        sequence_length: int, the longest source (sizes the position embedding).
        hidden_dim: int, ``d_model`` (default 256).
        intermediate_dim: int, feed-forward width (default 512).
        num_heads: int (default 4).
        num_layers: int, encoder blocks (default 3).
        dropout: float (default 0.1).
    """

    def __init__(
        self,
        vocabulary_size: int,
        sequence_length: int,
        hidden_dim: int = 256,
        intermediate_dim: int = 512,
        num_heads: int = 4,
        num_layers: int = 3,
        dropout: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        import keras_hub

        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.dropout = dropout
        self.source_embedding = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, hidden_dim, name="source_embedding"
        )
        self.encoder_layers = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim, num_heads, dropout=dropout, name=f"encoder_{i}"
            )
            for i in range(num_layers)
        ]
        self.embedding_dropout = keras.layers.Dropout(dropout, name="source_dropout")
        self.built = True  # the sublayers build on their first call

    def parts(self) -> list:
        """The sublayers in creation order."""
        return [self.source_embedding, *self.encoder_layers, self.embedding_dropout]

    def encode(self, token_ids, training=None):
        """int32 ``(B, S)`` -> ``(outputs (B, S, D), mask (B, S), [])``."""
        mask = source_mask(token_ids)  # (B, S)
        x = self.embedding_dropout(self.source_embedding(token_ids), training=training)
        for layer in self.encoder_layers:
            x = layer(x, padding_mask=mask, training=training)  # (B, S, D)
        return x, mask, []

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
        }
