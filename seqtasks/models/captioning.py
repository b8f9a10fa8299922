"""One-to-many captioning decoders: image features in, a sentence out.

The decoders are the translation decoders of :mod:`seqtasks.models.seq2seq`
with the token encoder swapped for image features: they subclass
:class:`RNNAttentionSeq2Seq` and :class:`TransformerSeq2Seq` and replace only
the encoder hook, so teacher forcing, the cached decoding step, beam search,
sampling and rescoring (:mod:`seqtasks.decoding`) are the same code for both
tasks.

- :class:`RNNCaptioner` with ``attention="none"`` is **Show and Tell**
  (Vinyals et al. 2015, sec. 3.1): the image conditions only the initial
  state of the LSTM, here through ``tanh(W f + b)`` of the mean-pooled
  features (as in Karpathy & Fei-Fei 2015 rather than Vinyals' image-as-first-
  word input).
- :class:`RNNCaptioner` with ``attention="additive"`` (or
  ``"multiplicative"``) is **Show, Attend and Tell** with soft attention (Xu
  et al. 2015, sec. 3.1.2): the initial state is predicted from the mean of
  the annotation vectors; each step attends over the spatial grid. The
  context is computed from the current state ``h_t`` and combined with it
  (Lu et al. 2017, sec. 2.1; Luong et al. 2015, eq. 5) rather than fed back
  into the LSTM, so training runs the LSTM over the whole caption at once.
- :class:`TransformerCaptioner`: keras-hub ``TransformerDecoder`` blocks
  whose cross-attention attends over the projected grid (plus learned
  position embeddings and optional ``TransformerEncoder`` blocks over it).

Interface (shared with the translation models): ``model({"image_features":
f, "decoder_token_ids": y_in})`` -> logits float32 ``(batch, length,
vocabulary_size)``, where ``f`` is float32 ``(batch, positions, dim)`` (a
feature grid flattened row-major, or ``positions=1`` for a feature vector) and
``y_in`` int32 ``(batch, length)`` starts with ``[START]``, right-padded with
0; ``init_cache(f, max_length)``, ``decode_step``, ``num_static_cache`` and
``cross_attention(f, y_in)`` -> float32 ``(batch, length, positions)`` (None
for Show and Tell) as documented in :mod:`seqtasks.models.seq2seq`.
"""

from __future__ import annotations

import keras
from keras import ops

from seqtasks.models.seq2seq import NO_ATTENTION, RNNAttentionSeq2Seq, TransformerSeq2Seq

CAPTION_MODELS = ("lstm", "attention", "transformer")


def image_parts(model) -> dict[str, list[str]]:
    """Layer names of each part of a captioner that fine-tuning can freeze: ``encoder``,
    the image side of the decoder (the feature projection and position embedding;
    Transformer: also its normalisation and encoder blocks; RNN: the bridge from the
    mean feature to the initial state); ``embeddings``, the word embedding and the
    feature position embedding."""
    image_side = ("feature_projection", "feature_norm", "feature_positions")
    encoder = [
        layer.name
        for layer in model.layers
        if layer.name in image_side or layer.name.startswith(("encoder_", "bridge_"))
    ]
    return {"encoder": encoder, "embeddings": ["target_embedding", "feature_positions"]}


@keras.saving.register_keras_serializable(package="seqtasks")
class RNNCaptioner(RNNAttentionSeq2Seq):
    """LSTM/GRU caption decoder initialised from image features, with or without attention.

    Args:
        vocabulary_size: int, size of the output softmax (caption tokens).
        embedding_dim: int, word embedding size (default 256).
        hidden_dim: int, decoder RNN units (default 512).
        cell: ``"lstm"`` or ``"gru"``.
        attention: ``"none"`` (Show and Tell), ``"additive"`` (Show, Attend and
            Tell) or ``"multiplicative"``.
        dropout: float, dropout on word embeddings, image features and the
            output layer's input (default 0.3).
    """

    encoder_input_name = "image_features"

    def __init__(
        self,
        vocabulary_size: int,
        embedding_dim: int = 256,
        hidden_dim: int = 512,
        cell: str = "lstm",
        attention: str = "additive",
        dropout: float = 0.3,
        **kwargs,
    ):
        super().__init__(
            source_vocabulary_size=0,
            target_vocabulary_size=vocabulary_size,
            embedding_dim=embedding_dim,
            hidden_dim=hidden_dim,
            num_layers=0,
            cell=cell,
            attention=attention,
            dropout=dropout,
            **kwargs,
        )
        self.vocabulary_size = vocabulary_size

    @property
    def decoder_units(self) -> int:
        return self.hidden_dim

    def _build_encoder(self, rnn) -> None:
        # Annotation vectors projected to the decoder width (the attention keys/values).
        if self.attention != NO_ATTENTION:
            self.feature_projection = keras.layers.Dense(self.hidden_dim, name="feature_projection")
        self.feature_dropout = keras.layers.Dropout(self.dropout)

    def _encode(self, image_features, training=None):
        features = self.feature_dropout(ops.cast(image_features, "float32"), training=training)
        batch, positions = ops.shape(features)[0], ops.shape(features)[1]
        mask = ops.ones((batch, positions), "bool")
        pooled = ops.mean(features, axis=1)  # (B, C): Xu et al. sec. 3.1.2
        state = [bridge(pooled) for bridge in self.bridge]
        if self.attention == NO_ATTENTION:
            # Nothing to attend over: a one-position placeholder keeps the cache layout.
            return ops.zeros((batch, 1, 1)), ops.ones((batch, 1), "bool"), state
        return self.feature_projection(features), mask, state

    def freezable_parts(self) -> dict[str, list[str]]:
        """The layers of each part fine-tuning can freeze: see :func:`image_parts`."""
        return image_parts(self)

    def get_config(self):
        config = super().get_config()
        for key in ("source_vocabulary_size", "target_vocabulary_size", "num_layers"):
            config.pop(key)
        return {**config, "vocabulary_size": self.vocabulary_size}


@keras.saving.register_keras_serializable(package="seqtasks")
class TransformerCaptioner(TransformerSeq2Seq):
    """keras-hub Transformer decoder cross-attending over image features.

    Args:
        vocabulary_size: int.
        sequence_length: int, the longest caption in tokens (``[START]`` and
            ``[END]`` included); sizes the position embeddings and the cache.
        num_positions: int, feature positions per image (25 for a 5x5 grid).
        hidden_dim: int, ``d_model`` (default 256).
        intermediate_dim: int, feed-forward width (default 1024).
        num_heads: int (default 4).
        num_layers: int, decoder blocks (default 2).
        num_encoder_layers: int, ``TransformerEncoder`` blocks over the
            projected grid (default 0: projection + position embedding only).
        dropout: float (default 0.1).
    """

    encoder_input_name = "image_features"

    def __init__(
        self,
        vocabulary_size: int,
        sequence_length: int,
        num_positions: int,
        hidden_dim: int = 256,
        intermediate_dim: int = 1024,
        num_heads: int = 4,
        num_layers: int = 2,
        num_encoder_layers: int = 0,
        dropout: float = 0.1,
        **kwargs,
    ):
        self.vocabulary_size = vocabulary_size
        self.num_positions = num_positions
        self.num_encoder_layers = num_encoder_layers
        super().__init__(
            source_vocabulary_size=0,
            target_vocabulary_size=vocabulary_size,
            sequence_length=sequence_length,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            num_heads=num_heads,
            num_layers=num_layers,
            dropout=dropout,
            **kwargs,
        )

    def _build_encoder(self) -> None:
        import keras_hub

        self.feature_projection = keras.layers.Dense(self.hidden_dim, name="feature_projection")
        self.feature_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="feature_norm")
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            self.num_positions, name="feature_positions"
        )
        self.encoder_layers = [
            keras_hub.layers.TransformerEncoder(
                self.intermediate_dim, self.num_heads, dropout=self.dropout, name=f"encoder_{i}"
            )
            for i in range(self.num_encoder_layers)
        ]

    def encode(self, image_features, training=None):
        x = self.feature_projection(ops.cast(image_features, "float32"))  # (B, P, D)
        x = self.feature_norm(x + self.position_embedding(x))
        x = self.embedding_dropout(x, training=training)
        mask = ops.ones(ops.shape(x)[:2], "bool")
        for layer in self.encoder_layers:
            x = layer(x, padding_mask=mask, training=training)
        return x, mask

    def freezable_parts(self) -> dict[str, list[str]]:
        """The layers of each part fine-tuning can freeze: see :func:`image_parts`."""
        return image_parts(self)

    def get_config(self):
        config = super().get_config()
        for key in ("source_vocabulary_size", "target_vocabulary_size"):
            config.pop(key)
        return {
            **config,
            "vocabulary_size": self.vocabulary_size,
            "num_positions": self.num_positions,
            "num_encoder_layers": self.num_encoder_layers,
        }


def build_captioner(config, vocabulary_size: int, feature_shape):
    """The ``config.model`` decoder (unbuilt) for features of ``feature_shape`` ``(P, C)``.

    ``config``: a captioning config (``model``, ``hidden_dim``, ``sequence_length``, ...).
    """
    if config.model == "transformer":
        return TransformerCaptioner(
            vocabulary_size,
            sequence_length=config.sequence_length,
            num_positions=int(feature_shape[0]),
            hidden_dim=config.hidden_dim,
            intermediate_dim=config.intermediate_dim,
            num_heads=config.num_heads,
            num_layers=config.num_layers,
            num_encoder_layers=config.num_encoder_layers,
            dropout=config.dropout,
            name="decoder",
        )
    return RNNCaptioner(
        vocabulary_size,
        embedding_dim=config.embedding_dim,
        hidden_dim=config.hidden_dim,
        cell=config.cell,
        attention=NO_ATTENTION if config.model == "lstm" else config.attention,
        dropout=config.dropout,
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
