"""The encoder halves of the captioners: image features in, annotation vectors out.

Inputs are float ``(B, P, C)``: a feature grid flattened row-major, or ``P=1`` for a
feature vector (:mod:`seqtasks.models.image_encoders`). With a ``backbone`` (the
trainable top blocks of a partly frozen CNN, e.g.
:class:`~seqtasks.models.image_encoders.BackboneTop`) the inputs are the frozen part's
grid and the backbone turns them into the features first. Each returns ``encoded =
(outputs (B, P', D), mask bool (B, P'), summaries)`` for a decoder of
:mod:`seqtasks.models.decoders`, and names the model parts fine-tuning can freeze.

- :class:`PooledFeatureEncoder` (RNN decoders): the mean-pooled features initialise
  the decoder state (Show and Tell, Vinyals et al. 2015, sec. 3.1, through ``tanh(W f +
  b)`` as in Karpathy & Fei-Fei 2015; Show, Attend and Tell, Xu et al. 2015, sec.
  3.1.2, whose initial state comes from the mean annotation vector) and, for attention,
  the features projected to the decoder width are the annotation vectors.
- :class:`TransformerFeatureEncoder`: projection, learned position embedding and layer
  norm, then optional keras-hub ``TransformerEncoder`` blocks over the grid.
"""

from __future__ import annotations

import keras
from keras import ops


def image_parts(model) -> dict[str, list[str]]:
    """Layer names of each part of a captioner that fine-tuning can freeze: ``encoder``,
    the image side of the decoder (the fine-tuned image-encoder blocks ``backbone_top``
    if any, the feature projection and position embedding;
    Transformer: also its normalisation and encoder blocks; RNN: the bridge from the
    mean feature to the initial state); ``embeddings``, the word embedding and the
    feature position embedding."""
    image_side = ("backbone_top", "feature_projection", "feature_norm", "feature_positions")
    encoder = [
        layer.name
        for layer in model.layers
        if layer.name in image_side or layer.name.startswith(("encoder_", "bridge_"))
    ]
    return {"encoder": encoder, "embeddings": ["target_embedding", "feature_positions"]}


class _FeatureEncoder(keras.layers.Layer):
    """What the two feature encoders share: their input name and freezable parts."""

    input_name = "image_features"  # the key of this input in the model's call()

    def __init__(self, backbone=None, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def model_parts(self, model) -> dict[str, list[str]]:
        """``model``'s freezable parts: :func:`image_parts`."""
        return image_parts(model)

    def backbone_parts(self) -> list:
        """``[backbone]``, or ``[]`` without one."""
        return [] if self.backbone is None else [self.backbone]

    def features(self, image_features, training=None):
        """float32 ``(B, P, C)``: the inputs, through the backbone if there is one."""
        if self.backbone is not None:
            image_features = self.backbone(image_features, training=training)
        return ops.cast(image_features, "float32")

    def call(self, image_features, training=None):
        return self.encode(image_features, training)

    def get_config(self):
        config = super().get_config()
        if self.backbone is not None:  # (absent otherwise: older configs load unchanged)
            config["backbone"] = keras.saving.serialize_keras_object(self.backbone)
        return config

    @classmethod
    def from_config(cls, config):
        backbone = config.pop("backbone", None)
        if backbone is not None:
            backbone = keras.saving.deserialize_keras_object(backbone)
        return cls(backbone=backbone, **config)


@keras.saving.register_keras_serializable(package="seqtasks")
class PooledFeatureEncoder(_FeatureEncoder):
    """Features for an RNN decoder: their mean (the initial state) and, with attention,
    their projection (the annotation vectors).

    Args:
        units: int, the projection width (the decoder's units), or None (default) for
            a decoder without attention: then ``outputs`` is a zero placeholder ``(B, 1,
            1)`` with a one-position mask, which keeps the cache layout.
        dropout: float, on the features (default 0.3).
        backbone: a layer ``(B, P', C') -> (B, P, C)`` applied first (default None).
    """

    def __init__(self, units: int | None = None, dropout: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dropout = dropout
        # Annotation vectors projected to the decoder width (the attention keys/values).
        if units is not None:
            self.feature_projection = keras.layers.Dense(units, name="feature_projection")
        else:
            self.feature_projection = None
        self.feature_dropout = keras.layers.Dropout(dropout, name="feature_dropout")
        self.built = True  # the sublayers build on their first call

    def parts(self) -> list:
        """The sublayers in creation order."""
        projection = [] if self.feature_projection is None else [self.feature_projection]
        return [*self.backbone_parts(), *projection, self.feature_dropout]

    def encode(self, image_features, training=None):
        """float ``(B, P, C)`` -> ``(outputs (B, P, units), mask (B, P), [mean (B, C)])``."""
        features = self.feature_dropout(self.features(image_features, training), training=training)
        batch, positions = ops.shape(features)[0], ops.shape(features)[1]
        pooled = ops.mean(features, axis=1)  # (B, C): Xu et al. sec. 3.1.2
        if self.feature_projection is None:
            # Nothing to attend over: a one-position placeholder keeps the cache layout.
            return ops.zeros((batch, 1, 1)), ops.ones((batch, 1), "bool"), [pooled]
        mask = ops.ones((batch, positions), "bool")
        return self.feature_projection(features), mask, [pooled]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="seqtasks")
class TransformerFeatureEncoder(_FeatureEncoder):
    """Features for a Transformer decoder: ``norm(W f + p)`` then encoder blocks.

    Args:
        num_positions: int, feature positions per image (25 for a 5x5 grid).
        hidden_dim: int, ``d_model`` (default 256).
        intermediate_dim: int, the blocks' feed-forward width (default 1024).
        num_heads: int (default 4).
        num_layers: int, ``TransformerEncoder`` blocks (default 0: projection + position
            embedding only).
        dropout: float (default 0.1).
        backbone: a layer ``(B, P', C') -> (B, P, C)`` applied first (default None).
    """

    def __init__(
        self,
        num_positions: int,
        hidden_dim: int = 256,
        intermediate_dim: int = 1024,
        num_heads: int = 4,
        num_layers: int = 0,
        dropout: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        import keras_hub

        self.num_positions = num_positions
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.dropout = dropout
        self.feature_projection = keras.layers.Dense(hidden_dim, name="feature_projection")
        self.feature_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="feature_norm")
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            num_positions, name="feature_positions"
        )
        self.encoder_layers = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim, num_heads, dropout=dropout, name=f"encoder_{i}"
            )
            for i in range(num_layers)
        ]
        self.embedding_dropout = keras.layers.Dropout(dropout, name="feature_dropout")
        self.built = True  # the sublayers build on their first call

    def parts(self) -> list:
        """The sublayers in creation order."""
        return [
            *self.backbone_parts(),
            self.feature_projection,
            self.feature_norm,
            self.position_embedding,
            *self.encoder_layers,
            self.embedding_dropout,
        ]

    def encode(self, image_features, training=None):
        """float ``(B, P, C)`` -> ``(outputs (B, P, D), mask (B, P), [])``."""
        x = self.feature_projection(self.features(image_features, training))  # (B, P, D)
        x = self.feature_norm(x + self.position_embedding(x))
        x = self.embedding_dropout(x, training=training)
        mask = ops.ones(ops.shape(x)[:2], "bool")
        for layer in self.encoder_layers:
            x = layer(x, padding_mask=mask, training=training)
        return x, mask, []

    def get_config(self):
        return {
            **super().get_config(),
            "num_positions": self.num_positions,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
        }
