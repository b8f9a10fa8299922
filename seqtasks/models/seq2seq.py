"""Encoder-decoder (many-to-many) models with teacher forcing and a cached decoding step.

Two architectures share one interface, so decoding (:mod:`seqtasks.decoding`),
training and export don't care which one runs:

- :class:`TransformerSeq2Seq`: keras-hub ``TokenAndPositionEmbedding``,
  ``TransformerEncoder`` and ``TransformerDecoder`` stacks (Vaswani et al. 2017,
  sec. 3), post-layer-norm as in the paper.
- :class:`RNNAttentionSeq2Seq`: a bidirectional LSTM/GRU encoder and an
  LSTM/GRU decoder whose output attends over the encoder states, with additive
  scores (Bahdanau et al. 2014, sec. 3.1 and appendix A.1.2) or multiplicative
  ("general") scores (Luong et al. 2015, sec. 3.1), followed by Luong's
  attentional layer ``tanh(W_c [c_t; h_t])`` (eq. 5). Input feeding (Luong
  sec. 3.3) is left out so the decoder RNN runs over the whole target at once
  in training (and stays cuDNN-eligible).

Interface (all tensors are backend tensors, written with ``keras.ops``):

- ``model({"encoder_token_ids": src, "decoder_token_ids": tgt_in})`` -> logits
  float32 ``(batch, target_length, vocabulary_size)``: teacher forcing, the
  decoder sees the true previous tokens. Inputs are int32, right-padded with 0.
- ``model.encode(src)`` -> ``(encoder_outputs (batch, source_length, dim),
  encoder_padding_mask bool (batch, source_length))``.
- ``model.init_cache(encoder_token_ids, max_length)`` -> a tuple of tensors
  whose first axis is the batch. The first ``model.num_static_cache`` entries
  depend only on the source (encoder states, mask, precomputed cross-attention
  keys/values); beam search reorders only the others (per-hypothesis state).
- ``model.decode_step(token_ids (batch, 1), cache, index)`` ->
  ``(logits (batch, vocabulary_size), cache)``: the next-token distribution
  after the token at position ``index``, reusing the cache so earlier positions
  are not recomputed (Transformer: keys/values of every layer; RNN: the state).
- ``model.cross_attention(src, tgt_in)`` -> float32 ``(batch, target_length,
  source_length)``, the attention weights of the (last) decoder layer, for plots.
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.models.layers import large_negative

SEQ2SEQ_MODELS = ("transformer", "rnn-attention")
RNN_CELLS = ("lstm", "gru")
ATTENTION_SCORES = ("additive", "multiplicative")
NO_ATTENTION = "none"


def _source_mask(encoder_token_ids):
    """bool ``(B, S)``: True on real tokens; position 0 always counts as real.

    An all-padding row (an empty input) would otherwise give a fully masked
    RNN/attention row, which the cuDNN kernel rejects inside a graph; with
    position 0 unmasked it encodes one padding embedding instead.
    """
    mask = ops.not_equal(encoder_token_ids, 0)
    first = ops.arange(ops.shape(encoder_token_ids)[1]) == 0
    return ops.logical_or(mask, first[None, :])


@keras.saving.register_keras_serializable(package="seqtasks")
class SourceAttention(keras.layers.Layer):
    """Attention of decoder states over encoder states with a padding mask.

    Scores ``additive``: ``v^T tanh(W_q q + W_k k)`` (Bahdanau et al. 2014, A.1.2);
    ``multiplicative``: ``q^T W k`` (Luong et al. 2015, sec. 3.1, "general").
    Weights are a softmax over the unmasked source positions.

    Args:
        units: int. Size of the additive score's hidden layer (ignored for
            multiplicative scores, whose ``W`` maps the key to the query size).
        score: ``"additive"`` or ``"multiplicative"``.

    Call arguments:
        query: float ``(batch, target_length, query_dim)``.
        keys: float ``(batch, source_length, key_dim)``.
        keys_mask: bool ``(batch, source_length)``, True on real tokens.

    Returns:
        ``(context (batch, target_length, key_dim), weights (batch, target_length,
        source_length))``.
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


def text_parts(model) -> dict[str, list[str]]:
    """Layer names of each part of a translation model that fine-tuning can freeze (see
    :func:`freeze`): ``encoder`` (the source embedding and every encoder layer; the
    decoder, its cross-attention and the bridge to its state keep training) and
    ``embeddings`` (the source and target token embeddings)."""
    encoder = [
        layer.name
        for layer in model.layers
        if layer.name == "source_embedding" or layer.name.startswith("encoder_")
    ]
    return {"encoder": encoder, "embeddings": ["source_embedding", "target_embedding"]}


@keras.saving.register_keras_serializable(package="seqtasks")
class RNNAttentionSeq2Seq(keras.Model):
    """Bidirectional LSTM/GRU encoder, LSTM/GRU decoder with attention (see module docstring).

    Args:
        source_vocabulary_size: int, source ids are in ``[0, source_vocabulary_size)``.
        target_vocabulary_size: int, size of the output softmax.
        embedding_dim: int, token embedding size (default 256).
        hidden_dim: int, units of each encoder direction and of the decoder
            (default 256; the decoder has ``2 * hidden_dim`` units to match the
            concatenated bidirectional states).
        num_layers: int, stacked bidirectional encoder layers (default 1).
        cell: ``"lstm"`` or ``"gru"``.
        attention: ``"additive"`` (Bahdanau) or ``"multiplicative"`` (Luong).
        dropout: float, dropout on embeddings and the attentional layer.
    """

    def __init__(
        self,
        source_vocabulary_size: int,
        target_vocabulary_size: int,
        embedding_dim: int = 256,
        hidden_dim: int = 256,
        num_layers: int = 1,
        cell: str = "lstm",
        attention: str = "additive",
        dropout: float = 0.2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in RNN_CELLS:
            raise ValueError(f"cell must be one of {RNN_CELLS}; Received: cell={cell!r}")
        if attention != NO_ATTENTION and attention not in ATTENTION_SCORES:
            raise ValueError(
                f"attention must be one of {ATTENTION_SCORES} or {NO_ATTENTION!r}; "
                f"Received: attention={attention!r}"
            )
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.cell = cell
        self.attention = attention
        self.dropout = dropout
        rnn = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
        self.target_embedding = keras.layers.Embedding(
            target_vocabulary_size, embedding_dim, name="target_embedding"
        )
        self._build_encoder(rnn)
        decoder_units = self.decoder_units
        self.num_states = 2 if cell == "lstm" else 1
        self.bridge = [
            keras.layers.Dense(decoder_units, activation="tanh", name=f"bridge_{i}")
            for i in range(self.num_states)
        ]
        self.decoder_rnn = rnn(
            decoder_units, return_sequences=True, return_state=True, name="decoder"
        )
        if attention == NO_ATTENTION:
            self.source_attention = self.attentional = None
        else:
            self.source_attention = SourceAttention(decoder_units, attention, name="attention")
            self.attentional = keras.layers.Dense(
                decoder_units, activation="tanh", name="attentional"
            )
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.output_dropout = keras.layers.Dropout(dropout)
        self.output_dense = keras.layers.Dense(
            target_vocabulary_size, dtype="float32", name="logits"
        )  # float32 under mixed precision too (softmax, loss)

    num_static_cache = 2  # encoder outputs, encoder mask
    encoder_input_name = "encoder_token_ids"  # the key of the encoder input in call()

    @property
    def decoder_units(self) -> int:
        """Decoder RNN units: both encoder directions concatenated."""
        return 2 * self.hidden_dim

    def _build_encoder(self, rnn) -> None:
        """Source embedding and stacked bidirectional RNN layers (subclasses replace this)."""
        self.source_embedding = keras.layers.Embedding(
            self.source_vocabulary_size, self.embedding_dim, name="source_embedding"
        )
        self.encoder_layers = [
            keras.layers.Bidirectional(
                rnn(self.hidden_dim, return_sequences=True, return_state=True),
                name=f"encoder_{i}",
            )
            for i in range(self.num_layers)
        ]

    def _encode(self, encoder_token_ids, training=None):
        mask = _source_mask(encoder_token_ids)  # (B, S)
        x = self.embedding_dropout(self.source_embedding(encoder_token_ids), training=training)
        states = None
        for layer in self.encoder_layers:
            x, *states = layer(x, mask=mask, training=training)  # (B, S, 2H)
        # Bidirectional returns forward states then backward states.
        half = len(states) // 2
        decoder_state = [
            self.bridge[i](ops.concatenate([states[i], states[half + i]], axis=-1))
            for i in range(self.num_states)
        ]
        return x, mask, decoder_state

    def encode(self, encoder_token_ids, training=None):
        outputs, mask, _ = self._encode(encoder_token_ids, training)
        return outputs, mask

    def _decode(self, decoder_token_ids, encoder_outputs, encoder_mask, state, training=None):
        x = self.embedding_dropout(self.target_embedding(decoder_token_ids), training=training)
        decoder_mask = ops.not_equal(decoder_token_ids, 0)
        h, *state = self.decoder_rnn(x, initial_state=state, mask=decoder_mask, training=training)
        h_tilde, weights = self._attend(h, encoder_outputs, encoder_mask)
        logits = self.output_dense(self.output_dropout(h_tilde, training=training))
        return logits, state, weights

    def _attend(self, h, encoder_outputs, encoder_mask):
        """Luong's attentional state ``tanh(W_c [c_t; h_t])`` (eq. 5) and the weights.

        Without attention (``attention="none"``) the decoder state itself and
        no weights.
        """
        if self.source_attention is None:
            # A plain op, not a layer: drops the Keras mask the RNN attached to h, which
            # fit() would otherwise apply to the (already masked) loss as sample weights.
            return ops.multiply(h, 1.0), None
        context, weights = self.source_attention(h, encoder_outputs, encoder_mask)
        return self.attentional(ops.concatenate([context, h], axis=-1)), weights

    def call(self, inputs, training=None):
        encoder_outputs, encoder_mask, state = self._encode(
            inputs[self.encoder_input_name], training
        )
        logits, _, _ = self._decode(
            inputs["decoder_token_ids"], encoder_outputs, encoder_mask, state, training
        )
        return logits

    def init_cache(self, encoder_token_ids, max_length):
        encoder_outputs, encoder_mask, state = self._encode(encoder_token_ids)
        return (encoder_outputs, ops.cast(encoder_mask, "int32"), *state)

    def decode_step(self, token_ids, cache, index):
        encoder_outputs, encoder_mask, *state = cache
        x = self.target_embedding(token_ids)  # (B, 1, E)
        # No RNN mask for a single step (a fully masked row fails the cuDNN kernel in
        # a graph); a [PAD] fed to a finished beam hypothesis keeps its state instead.
        h, *new_state = self.decoder_rnn(x, initial_state=list(state))
        is_pad = ops.equal(token_ids, 0)  # (B, 1)
        new_state = [ops.where(is_pad, old, new) for old, new in zip(state, new_state)]
        h_tilde, _ = self._attend(h, encoder_outputs, encoder_mask)
        logits = self.output_dense(h_tilde)
        return logits[:, 0, :], (encoder_outputs, encoder_mask, *new_state)

    def cross_attention(self, encoder_token_ids, decoder_token_ids):
        encoder_outputs, encoder_mask, state = self._encode(encoder_token_ids)
        _, _, weights = self._decode(decoder_token_ids, encoder_outputs, encoder_mask, state)
        return weights

    def freezable_parts(self) -> dict[str, list[str]]:
        """The layers of each part fine-tuning can freeze: see :func:`text_parts`."""
        return text_parts(self)

    def get_config(self):
        return {
            **super().get_config(),
            "source_vocabulary_size": self.source_vocabulary_size,
            "target_vocabulary_size": self.target_vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "cell": self.cell,
            "attention": self.attention,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="seqtasks")
class TransformerSeq2Seq(keras.Model):
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
    """

    def __init__(
        self,
        source_vocabulary_size: int,
        target_vocabulary_size: int,
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

        if hidden_dim % num_heads:
            raise ValueError(
                f"hidden_dim must be a multiple of num_heads; "
                f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        self.source_vocabulary_size = source_vocabulary_size
        self.target_vocabulary_size = target_vocabulary_size
        self.sequence_length = sequence_length
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.dropout = dropout
        self.target_embedding = keras_hub.layers.TokenAndPositionEmbedding(
            target_vocabulary_size, sequence_length, hidden_dim, name="target_embedding"
        )
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self._build_encoder()
        self.decoder_layers = [
            keras_hub.layers.TransformerDecoder(
                intermediate_dim, num_heads, dropout=dropout, name=f"decoder_{i}"
            )
            for i in range(num_layers)
        ]
        self.output_dense = keras.layers.Dense(
            target_vocabulary_size, dtype="float32", name="logits"
        )  # float32 under mixed precision too (softmax, loss)

    num_static_cache = 3  # encoder outputs, encoder mask, cross-attention keys/values
    encoder_input_name = "encoder_token_ids"  # the key of the encoder input in call()

    def _build_encoder(self) -> None:
        """Source token+position embedding and encoder blocks (subclasses replace this)."""
        import keras_hub

        self.source_embedding = keras_hub.layers.TokenAndPositionEmbedding(
            self.source_vocabulary_size,
            self.sequence_length,
            self.hidden_dim,
            name="source_embedding",
        )
        self.encoder_layers = [
            keras_hub.layers.TransformerEncoder(
                self.intermediate_dim, self.num_heads, dropout=self.dropout, name=f"encoder_{i}"
            )
            for i in range(self.num_layers)
        ]

    def encode(self, encoder_token_ids, training=None):
        mask = _source_mask(encoder_token_ids)  # (B, S)
        x = self.embedding_dropout(self.source_embedding(encoder_token_ids), training=training)
        for layer in self.encoder_layers:
            x = layer(x, padding_mask=mask, training=training)  # (B, S, D)
        return x, mask

    def call(self, inputs, training=None):
        encoder_outputs, encoder_mask = self.encode(inputs[self.encoder_input_name], training)
        decoder_token_ids = inputs["decoder_token_ids"]
        x = self.embedding_dropout(self.target_embedding(decoder_token_ids), training=training)
        decoder_mask = ops.not_equal(decoder_token_ids, 0)
        for layer in self.decoder_layers:
            x = layer(
                x,
                encoder_outputs,
                decoder_padding_mask=decoder_mask,
                encoder_padding_mask=encoder_mask,
                training=training,
            )
        return self.output_dense(x)  # (B, T, V)

    def init_cache(self, encoder_token_ids, max_length):
        encoder_outputs, encoder_mask = self.encode(encoder_token_ids)
        batch = ops.shape(encoder_token_ids)[0]
        head_dim = self.hidden_dim // self.num_heads
        # In the layers' compute dtype (float16 under mixed precision), as decode_step's.
        dtype = self.decoder_layers[0].compute_dtype
        # Cross-attention keys/values depend only on the source: computed once here, by
        # keras-hub's public cache seeding (cross_attention_cache_update_index=0) on one
        # throw-away decoder position per block.
        length = ops.shape(encoder_outputs)[1]
        empty = ops.zeros((batch, 2, length, self.num_heads, head_dim), dtype)
        probe = ops.zeros((batch, 1, self.hidden_dim), dtype)
        # Two self-attention slots: a softmax over one would make Keras warn.
        probe_cache = ops.zeros((batch, 2, 2, self.num_heads, head_dim), dtype)
        cross = []
        for layer in self.decoder_layers:
            _, _, seeded = layer(
                probe,
                encoder_outputs,
                encoder_padding_mask=encoder_mask,
                self_attention_cache=probe_cache,
                self_attention_cache_update_index=0,
                cross_attention_cache=empty,
                cross_attention_cache_update_index=0,
            )
            cross.append(seeded)  # (B, 2, S, H, Dh)
        cross_cache = ops.stack(cross, axis=1)  # (B, L, 2, S, H, Dh)
        # Self-attention keys/values of every layer, filled one position per step.
        self_cache = ops.zeros(
            (batch, self.num_layers, 2, max_length, self.num_heads, head_dim), dtype
        )
        return (encoder_outputs, ops.cast(encoder_mask, "int32"), cross_cache, self_cache)

    def decode_step(self, token_ids, cache, index):
        encoder_outputs, encoder_mask, cross_cache, self_cache = cache
        x = self.target_embedding(token_ids, start_index=index)  # (B, 1, D)
        updated = []
        for i, layer in enumerate(self.decoder_layers):
            x, layer_cache, _ = layer(
                x,
                encoder_outputs,
                encoder_padding_mask=ops.cast(encoder_mask, "bool"),
                self_attention_cache=self_cache[:, i],
                self_attention_cache_update_index=index,
                cross_attention_cache=cross_cache[:, i],
                cross_attention_cache_update_index=None,
            )
            updated.append(layer_cache)
        logits = self.output_dense(x)[:, 0, :]  # (B, V)
        return logits, (encoder_outputs, encoder_mask, cross_cache, ops.stack(updated, axis=1))

    def cross_attention(self, encoder_token_ids, decoder_token_ids):
        """Head-averaged cross-attention weights of the last decoder block, ``(B, T, S)``.

        Recomputes the last block's self-attention sublayer and then its
        cross-attention with ``return_attention_scores`` (keras-hub's cached
        attention layer does not return scores), using the block's own weights.
        """
        encoder_outputs, encoder_mask = self.encode(encoder_token_ids)
        x = self.target_embedding(decoder_token_ids)
        decoder_mask = ops.not_equal(decoder_token_ids, 0)
        for layer in self.decoder_layers[:-1]:
            x = layer(
                x,
                encoder_outputs,
                decoder_padding_mask=decoder_mask,
                encoder_padding_mask=encoder_mask,
            )
        last = self.decoder_layers[-1]
        length = ops.shape(decoder_token_ids)[1]
        causal = ops.tril(ops.ones((length, length), "bool"))[None]
        self_mask = ops.logical_and(causal, decoder_mask[:, None, :])
        attended = keras.layers.MultiHeadAttention.call(
            last._self_attention_layer, query=x, value=x, attention_mask=self_mask
        )
        x = last._self_attention_layer_norm(x + attended)
        cross_mask = ops.repeat(encoder_mask[:, None, :], length, axis=1)
        _, scores = keras.layers.MultiHeadAttention.call(
            last._cross_attention_layer,
            query=x,
            value=encoder_outputs,
            attention_mask=cross_mask,
            return_attention_scores=True,
        )  # (B, heads, T, S)
        return ops.mean(scores, axis=1)

    def freezable_parts(self) -> dict[str, list[str]]:
        """The layers of each part fine-tuning can freeze: see :func:`text_parts`."""
        return text_parts(self)

    def get_config(self):
        return {
            **super().get_config(),
            "source_vocabulary_size": self.source_vocabulary_size,
            "target_vocabulary_size": self.target_vocabulary_size,
            "sequence_length": self.sequence_length,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
        }


FREEZE_CHOICES = ("encoder", "embeddings", "none")


def freeze(model: keras.Model, part: str) -> list[str]:
    """Make ``part`` of a seq2seq or captioning model non-trainable (fine-tuning): the
    layers its ``freezable_parts()`` names for ``part``.

    Translation models (:class:`TransformerSeq2Seq`, :class:`RNNAttentionSeq2Seq`):

    - ``encoder``: the source embedding and every encoder layer (the decoder,
      its cross-attention and, for RNN models, the bridge to the decoder's
      initial state keep training);
    - ``embeddings``: the source and target token embeddings (Transformers:
      with their position embeddings).

    Captioning decoders (:mod:`seqtasks.models.captioning`, whose encoder
    input is ``image_features``):

    - ``encoder``: the image side of the decoder: the feature projection (and
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
