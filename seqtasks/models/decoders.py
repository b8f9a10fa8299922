"""The decoder halves of the encoder-decoder models: target tokens in, next-token logits out.

Both decoders serve translation and captioning alike (:class:`seqtasks.models.composed.
EncoderDecoder` pairs one with a token or an image-feature encoder). They read the
encoder's output as the triple ``encoded = (outputs (B, S, D), mask bool (B, S),
summaries)``, where ``summaries`` is a list of float ``(B, D')`` tensors that initialise
an RNN decoder's state (one per state, or one shared by all; empty for Transformers).

- :class:`RNNAttentionDecoder`: an LSTM/GRU (or minGRU/minLSTM) whose output attends over the encoder
  states with additive scores (Bahdanau et al. 2014, sec. 3.1, appendix A.1.2) or
  multiplicative ("general") scores (Luong et al. 2015, sec. 3.1), followed by Luong's
  attentional layer ``tanh(W_c [c_t; h_t])`` (eq. 5); ``attention="none"`` is the plain
  decoder of Show and Tell (Vinyals et al. 2015, sec. 3.1). Input feeding (Luong sec.
  3.3) is left out so the RNN runs over the whole target at once in training (and
  stays cuDNN-eligible); for captions this is the "adaptive" arrangement of Lu et al.
  2017, sec. 2.1, rather than Show, Attend and Tell's (Xu et al. 2015, sec. 3.1.2).
- :class:`TransformerDecoderStack`: keras-hub ``TokenAndPositionEmbedding`` and
  ``TransformerDecoder`` blocks (Vaswani et al. 2017, sec. 3), post-layer-norm.

Each has ``decode`` (teacher forcing), ``init_cache``/``decode_step`` (cached
generation), ``cross_attention`` (plots), ``num_static_cache`` and ``parts()`` (its
layers, the word embedding first).
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.choices import RNN_CELLS  # noqa: F401 (re-exported)
from seqtasks.models.attention import (
    ATTENTION_SCORES,
    NO_ATTENTION,
    SourceAttention,
    doubly_stochastic_penalty,
)
from seqtasks.models.hub_attention import decoder_cross_attention_scores
from seqtasks.models.hub_decoder_step import (
    block_step,
    check_block,
    empty_cache,
    encoder_keys_values,
)
from seqtasks.models.layers import pad_positions
from seqtasks.models.min_rnn import MinGRU, MinLSTM

MIN_RNN_CELLS = {"mingru": MinGRU, "minlstm": MinLSTM}  # linear in the state: one h each


def rnn_class(cell: str):
    """The recurrent layer class of ``cell``: ``keras.layers.LSTM`` (``"lstm"``),
    ``keras.layers.GRU`` (``"gru"``), :class:`~seqtasks.models.min_rnn.MinGRU`
    (``"mingru"``) or :class:`~seqtasks.models.min_rnn.MinLSTM` (``"minlstm"``; Feng et
    al. 2024, sec. 3). All take ``(units, return_sequences=, return_state=)``.

    Raises:
        ValueError: for another ``cell``.
    """
    if cell not in RNN_CELLS:
        raise ValueError(f"cell must be one of {RNN_CELLS}; Received: cell={cell!r}")
    classes = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, **MIN_RNN_CELLS}
    return classes[cell]


@keras.saving.register_keras_serializable(package="seqtasks")
class RNNAttentionDecoder(keras.layers.Layer):
    """LSTM/GRU decoder with attention over the encoder outputs (see module docstring).

    Args:
        vocabulary_size: int, size of the output softmax.
        embedding_dim: int, word embedding size (default 256).
        units: int, decoder RNN units (default 512); also the width of the bridge
            ``tanh(W s + b)`` from each encoder summary to the initial state.
        cell: ``"lstm"`` (default), ``"gru"``, ``"mingru"`` or ``"minlstm"`` (see
            :func:`rnn_class`). The min cells' state is ``h`` alone and must be >= 0 for
            their associative scan, so their bridge is ``sigmoid(W s + b)``; a cached
            step uses their :meth:`~seqtasks.models.min_rnn.MinRNN.step`.
        attention: ``"additive"`` (default), ``"multiplicative"`` or ``"none"``.
        dropout: float, on word embeddings and the output layer's input (default 0.2).
        attention_penalty: float, weight of the doubly stochastic attention penalty
            added in training (Xu et al. 2015, sec. 4.2.1; default 0.0 = off).
        attention_gate: bool, scale the attention context by a gating scalar
            ``beta_t = sigmoid(w . h_t + b)`` (Xu et al. 2015, sec. 4.2.1, who predict it
            from ``h_{t-1}``: here the context is computed from ``h_t``); default False.

    Raises:
        ValueError: for an unknown ``cell`` or ``attention``, or ``attention_gate``
            without attention.
    """

    num_static_cache = 2  # encoder outputs, encoder mask; then the RNN state

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int = 256,
        units: int = 512,
        cell: str = "lstm",
        attention: str = "additive",
        dropout: float = 0.2,
        attention_penalty: float = 0.0,
        attention_gate: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        rnn = rnn_class(cell)
        if attention_gate and attention == NO_ATTENTION:
            raise ValueError("attention_gate needs attention; Received: attention='none'")
        if attention != NO_ATTENTION and attention not in ATTENTION_SCORES:
            raise ValueError(
                f"attention must be one of {ATTENTION_SCORES} or {NO_ATTENTION!r}; "
                f"Received: attention={attention!r}"
            )
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.units = units
        self.cell = cell
        self.attention = attention
        self.dropout = dropout
        self.attention_penalty = float(attention_penalty)
        self.attention_gate = bool(attention_gate)
        self.num_states = 2 if cell == "lstm" else 1
        self.target_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, name="target_embedding"
        )
        bridge = "sigmoid" if cell in MIN_RNN_CELLS else "tanh"
        self.bridge = [
            keras.layers.Dense(units, activation=bridge, name=f"bridge_{i}")
            for i in range(self.num_states)
        ]
        self.decoder_rnn = rnn(units, return_sequences=True, return_state=True, name="decoder")
        if attention == NO_ATTENTION:
            self.source_attention = self.attentional = None
        else:
            self.source_attention = SourceAttention(units, attention, name="attention")
            self.attentional = keras.layers.Dense(units, activation="tanh", name="attentional")
        self.gate = (
            keras.layers.Dense(1, activation="sigmoid", name="attention_gate")
            if attention_gate
            else None
        )
        self.embedding_dropout = keras.layers.Dropout(dropout, name="target_dropout")
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            vocabulary_size, dtype="float32", name="logits"
        )  # float32 under mixed precision too (softmax, loss)
        self.built = True  # the sublayers build on their first call

    def parts(self) -> list:
        """The sublayers in creation order, the word embedding first."""
        attention = [] if self.source_attention is None else [self.source_attention]
        attention += [] if self.attentional is None else [self.attentional]
        attention += [] if self.gate is None else [self.gate]
        return [
            self.target_embedding,
            *self.bridge,
            self.decoder_rnn,
            *attention,
            self.embedding_dropout,
            self.output_dropout,
            self.output_dense,
        ]

    def initial_state(self, summaries) -> list:
        """The RNN's initial state: ``bridge_i(summaries[i])`` (one summary: shared)."""
        return [
            bridge(summaries[i] if len(summaries) > 1 else summaries[0])
            for i, bridge in enumerate(self.bridge)
        ]

    def _attend(self, h, encoder_outputs, encoder_mask):
        """Luong's attentional state ``tanh(W_c [c_t; h_t])`` (eq. 5) and the weights.

        Without attention the decoder state itself and no weights.
        """
        if self.source_attention is None:
            # A plain op, not a layer: drops the Keras mask the RNN attached to h, which
            # fit() would otherwise apply to the (already masked) loss as sample weights.
            return ops.multiply(h, 1.0), None
        context, weights = self.source_attention(h, encoder_outputs, encoder_mask)
        if self.gate is not None:
            context = context * self.gate(h)  # (B, T, 1): Xu et al.'s beta_t
        return self.attentional(ops.concatenate([context, h], axis=-1)), weights

    def _run(self, token_ids, encoded, training=None):
        encoder_outputs, encoder_mask, summaries = encoded
        x = self.embedding_dropout(self.target_embedding(token_ids), training=training)
        mask = ops.not_equal(token_ids, 0)
        state = self.initial_state(summaries)
        h, *_ = self.decoder_rnn(x, initial_state=state, mask=mask, training=training)
        h_tilde, weights = self._attend(h, encoder_outputs, encoder_mask)
        return self.output_dense(self.output_dropout(h_tilde, training=training)), weights

    def decode(self, token_ids, encoded, training=None):
        """Teacher forcing: int32 ``(B, T)`` -> float32 logits ``(B, T, V)``. In training,
        with ``attention_penalty`` > 0, adds ``attention_penalty`` times
        :func:`~seqtasks.models.attention.doubly_stochastic_penalty` to the layer's losses."""
        logits, weights = self._run(token_ids, encoded, training)
        if training and self.attention_penalty and weights is not None:
            penalty = doubly_stochastic_penalty(weights, ops.not_equal(token_ids, 0), encoded[1])
            self.add_loss(self.attention_penalty * penalty)
        return logits

    def call(self, token_ids, encoded, training=None):
        return self.decode(token_ids, encoded, training)

    def cross_attention(self, token_ids, encoded):
        """Attention weights float ``(B, T, S)``; None without attention (Show and Tell)."""
        return self._run(token_ids, encoded)[1]

    def init_cache(self, encoded, max_length):
        """``(encoder_outputs, encoder_mask int32, *state)``; ``max_length`` is unused."""
        encoder_outputs, encoder_mask, summaries = encoded
        state = self.initial_state(summaries)
        return (encoder_outputs, ops.cast(encoder_mask, "int32"), *state)

    def decode_step(self, token_ids, cache, index):
        """int32 ``(B, 1)`` -> ``(logits (B, V), cache)``; ``index`` is unused."""
        encoder_outputs, encoder_mask, *state = cache
        x = self.target_embedding(token_ids)  # (B, 1, E)
        if self.cell in MIN_RNN_CELLS:  # the cached step, not a scan over one position
            h, new_h = self.decoder_rnn.decode_step(x[:, 0, :], state[0])
            h, new_state = h[:, None, :], [new_h]
        else:
            # No RNN mask for a single step (a fully masked row fails the cuDNN kernel in
            # a graph); a [PAD] fed to a finished beam hypothesis keeps its state instead.
            h, *new_state = self.decoder_rnn(x, initial_state=list(state))
        is_pad = ops.equal(token_ids, 0)  # (B, 1)
        new_state = [ops.where(is_pad, old, new) for old, new in zip(state, new_state)]
        h_tilde, _ = self._attend(h, encoder_outputs, encoder_mask)
        logits = self.output_dense(h_tilde)
        return logits[:, 0, :], (encoder_outputs, encoder_mask, *new_state)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "cell": self.cell,
            "attention": self.attention,
            "dropout": self.dropout,
            "attention_penalty": self.attention_penalty,
            # Only when on: files without the gate still load in older seqtasks.
            **({"attention_gate": True} if self.attention_gate else {}),
        }


@keras.saving.register_keras_serializable(package="seqtasks")
class TransformerDecoderStack(keras.layers.Layer):
    """keras-hub Transformer decoder blocks over an encoder's outputs (Vaswani et al. 2017).

    Args:
        vocabulary_size: int, size of the output softmax.
        sequence_length: int, the longest target (sizes the position embedding and cache).
        hidden_dim: int, ``d_model`` (default 256).
        intermediate_dim: int, feed-forward width (default 512).
        num_heads: int (default 4); must divide ``hidden_dim``.
        num_layers: int, decoder blocks (default 3).
        dropout: float (default 0.1).
        tie_embeddings: bool, the output layer is the transposed target token embedding
            (keras-hub ``ReversibleEmbedding(reverse=True)``; Press & Wolf 2017, sec. 3;
            Vaswani et al. 2017, sec. 3.4), without a bias (default False: a Dense layer).

    Raises:
        ValueError: if ``num_heads`` does not divide ``hidden_dim``.
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
        tie_embeddings: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        import keras_hub

        if hidden_dim % num_heads:
            raise ValueError(
                f"hidden_dim must be a multiple of num_heads; "
                f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        self.vocabulary_size = vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.dropout = dropout
        self.target_embedding = keras_hub.layers.TokenAndPositionEmbedding(
            vocabulary_size, sequence_length, hidden_dim, name="target_embedding"
        )
        self.embedding_dropout = keras.layers.Dropout(dropout, name="target_dropout")
        self.decoder_layers = [
            keras_hub.layers.TransformerDecoder(
                intermediate_dim, num_heads, dropout=dropout, name=f"decoder_{i}"
            )
            for i in range(num_layers)
        ]
        self.tie_embeddings = bool(tie_embeddings)
        self.output_dense = (
            None
            if self.tie_embeddings
            else keras.layers.Dense(vocabulary_size, dtype="float32", name="logits")
        )  # float32 under mixed precision too (softmax, loss)
        self.built = True  # the sublayers build on their first call

    @property
    def num_static_cache(self) -> int:
        """The encoder mask and each block's cross-attention keys and values."""
        return 1 + 2 * self.num_layers

    def parts(self) -> list:
        """The sublayers in creation order, the word embedding first."""
        return [
            self.target_embedding,
            self.embedding_dropout,
            *self.decoder_layers,
            *([self.output_dense] if self.output_dense is not None else []),
        ]

    def _logits(self, x):
        """float32 ``(..., vocabulary_size)`` from the last block's output."""
        if self.output_dense is not None:
            return self.output_dense(x)
        return ops.cast(self.target_embedding.token_embedding(x, reverse=True), "float32")

    def _blocks(self, x, encoder_outputs, encoder_mask, decoder_mask, blocks, training=None):
        for layer in blocks:
            x = layer(
                x,
                encoder_outputs,
                decoder_padding_mask=decoder_mask,
                encoder_padding_mask=encoder_mask,
                training=training,
            )
        return x

    def decode(self, token_ids, encoded, training=None):
        """Teacher forcing: int32 ``(B, T)`` -> float32 logits ``(B, T, V)``."""
        encoder_outputs, encoder_mask, _ = encoded
        x = self.embedding_dropout(self.target_embedding(token_ids), training=training)
        mask = ops.not_equal(token_ids, 0)
        x = self._blocks(x, encoder_outputs, encoder_mask, mask, self.decoder_layers, training)
        return self._logits(x)  # (B, T, V)

    def call(self, token_ids, encoded, training=None):
        return self.decode(token_ids, encoded, training)

    def init_cache(self, encoded, max_length):
        """``(encoder_mask int32, *cross, *self)``: per block the
        cross-attention keys and values, two ``(B, H, S, Dh)`` tensors, then per block
        the empty self-attention keys and values, two ``(B, H, max_length, Dh)``. Head-major
        and one tensor each, so a step neither slices, restacks nor transposes a cache
        (:mod:`seqtasks.models.hub_decoder_step`). The encoder outputs themselves are not
        kept: a step reads only their keys and values."""
        encoder_outputs, encoder_mask, _ = encoded
        batch = ops.shape(encoder_outputs)[0]
        # In the layers' compute dtype (float16 under mixed precision), as decode_step's.
        dtype = self.decoder_layers[0].compute_dtype
        cross, own = [], []
        for layer in self.decoder_layers:
            # Cross-attention keys/values depend only on the source: computed once here.
            check_block(layer)
            cross.extend(encoder_keys_values(layer, encoder_outputs))
            own.extend(empty_cache(layer, batch, max_length, dtype))
        return (ops.cast(encoder_mask, "int32"), *cross, *own)

    #: The self-attention cache's length is the output's: beam search grows it (grow_cache).
    cache_grows = True

    def grow_cache(self, cache, length):
        """``cache`` with its self-attention keys and values zero-padded to ``length``
        positions (axis 2 of each ``(B, H, positions, Dh)``); the filled slots are kept."""
        static = self.num_static_cache
        return (*cache[:static], *(pad_positions(c, length) for c in cache[static:]))

    def decode_step(self, token_ids, cache, index):
        """int32 ``(B, 1)`` at position ``index`` -> ``(logits (B, V), cache)``."""
        static = self.num_static_cache
        encoder_mask = cache[0]
        cross, own = cache[1:static], cache[static:]
        x = self.target_embedding(token_ids, start_index=index)  # (B, 1, D)
        updated = []
        for i, layer in enumerate(self.decoder_layers):
            x, keys, values = block_step(
                layer, x, own[2 * i], own[2 * i + 1], index,
                cross=cross[2 * i : 2 * i + 2], encoder_mask=encoder_mask,
            )  # fmt: skip
            updated.extend((keys, values))
        logits = self._logits(x)[:, 0, :]  # (B, V)
        return logits, (*cache[:static], *updated)

    def cross_attention(self, token_ids, encoded):
        """Head-averaged cross-attention weights of the last block, float ``(B, T, S)``
        (through the adapter :func:`seqtasks.models.hub_attention.
        decoder_cross_attention_scores`)."""
        encoder_outputs, encoder_mask, _ = encoded
        x = self.target_embedding(token_ids)
        mask = ops.not_equal(token_ids, 0)
        x = self._blocks(x, encoder_outputs, encoder_mask, mask, self.decoder_layers[:-1])
        scores = decoder_cross_attention_scores(
            self.decoder_layers[-1], x, encoder_outputs, mask, encoder_mask
        )  # (B, heads, T, S)
        return ops.mean(scores, axis=1)

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
            "tie_embeddings": self.tie_embeddings,
        }
