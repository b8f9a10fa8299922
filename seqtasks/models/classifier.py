"""Many-to-one text classifier: token ids in, class (or per-label) probabilities out."""

from __future__ import annotations

import keras

from seqtasks.choices import POOLINGS  # noqa: F401 (re-exported)
from seqtasks.models.encoders import encode
from seqtasks.models.layers import MaskedPooling


def build_text_classifier(
    *,
    num_classes: int,
    vocabulary_size: int,
    sequence_length: int,
    kind: str = "bilstm",
    pooling: str = "max",
    dropout: float = 0.3,
    multi_label: bool = False,
    name: str = "text_classifier",
    **encoder_kwargs,
) -> keras.Model:
    """Embeddings, an encoder, masked pooling, dropout and a softmax (or sigmoid) layer.

    Args:
        num_classes: number of labels (>= 2).
        vocabulary_size: ids in the vocabulary, reserved tokens included.
        sequence_length: longest input the model accepts.
        kind: encoder (see :mod:`seqtasks.models.encoders`), default ``bilstm``.
        pooling: how the ``(B, T, D)`` states become one vector: ``max``
            (default) or ``mean`` over real tokens, or ``final`` (the
            encoder's summary: last RNN state, masked mean for Transformers), or
            ``concat``: the summary, the max and the mean side by side, ``(B, 3D)``
            (ULMFiT's concat pooling, Howard & Ruder 2018, sec. 3.3).
        dropout: dropout before the output layer and between encoder layers.
        multi_label: one independent sigmoid unit per label (for binary
            cross-entropy; any number of labels per text) instead of a softmax
            over the labels (default ``False``).
        **encoder_kwargs: passed to :func:`seqtasks.models.encoders.encode`.

    Returns:
        A functional ``keras.Model``: int32 ``token_ids`` ``(batch_size,
        sequence_length)`` right-padded with 0 -> float32 probabilities
        ``(batch_size, num_classes)`` (rows sum to 1 unless ``multi_label``)
        from a Dense layer named ``probabilities``.

    Raises:
        ValueError: for an unknown ``pooling`` or a bad encoder argument.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}. Received: pooling={pooling!r}")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    encoded = encode(
        token_ids,
        vocabulary_size=vocabulary_size,
        sequence_length=sequence_length,
        kind=kind,
        dropout=dropout,
        **encoder_kwargs,
    )
    if pooling == "final":
        x = encoded.summary
    elif pooling == "concat":
        x = keras.layers.Concatenate(name="concat_pooling")(
            [
                encoded.summary,
                MaskedPooling("max", name="max_pooling")(
                    encoded.sequence, padding_mask=encoded.padding_mask
                ),
                MaskedPooling("mean", name="mean_pooling")(
                    encoded.sequence, padding_mask=encoded.padding_mask
                ),
            ]
        )  # (B, 3D)
    else:
        x = MaskedPooling(pooling, name=f"{pooling}_pooling")(
            encoded.sequence, padding_mask=encoded.padding_mask
        )  # (B, D)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    probabilities = output_layer(num_classes, multi_label)(x)  # (B, C)
    return keras.Model(token_ids, probabilities, name=name)


def set_token_embeddings(model: keras.Model, matrix) -> None:
    """Set the token embedding table of a :func:`build_text_classifier` model to ``matrix``.

    Args:
        model: a model with a layer named ``embedding``: a ``keras.layers.Embedding``
            (recurrent encoders) or keras-hub's ``TokenAndPositionEmbedding`` (Transformer;
            its token table is set, the position table is left as it is).
        matrix: float32 ``(vocabulary_size, embedding_dim)``.

    Raises:
        ValueError: no such layer, or ``matrix`` has another shape than the table.
    """
    names = [layer.name for layer in model.layers]
    if "embedding" not in names:
        raise ValueError(f"{model.name}: no layer named 'embedding' among {names}")
    layer = model.get_layer("embedding")
    table = getattr(layer, "token_embedding", layer).embeddings
    if tuple(table.shape) != tuple(matrix.shape):
        raise ValueError(
            f"embedding table {tuple(table.shape)} cannot take a {tuple(matrix.shape)} matrix"
        )
    table.assign(matrix)


def output_layer(num_classes: int, multi_label: bool = False) -> keras.layers.Dense:
    """The ``probabilities`` layer: softmax over ``num_classes``, or one sigmoid per label."""
    return keras.layers.Dense(
        num_classes,
        activation="sigmoid" if multi_label else "softmax",
        dtype="float32",
        name="probabilities",
    )


HEAD_LAYERS = ("max_pooling", "mean_pooling", "head_dropout", "probabilities")
FREEZE_CHOICES = ("encoder", "embeddings", "none")


def replace_head(model: keras.Model, num_classes: int, multi_label: bool = False) -> keras.Model:
    """``model`` with a fresh output layer of ``num_classes`` over its pooled features.

    The new layer is a softmax, or with ``multi_label`` one sigmoid unit per
    label. Everything below the ``probabilities`` layer (embeddings, encoder,
    pooling, dropout) is shared with ``model``, weights included.
    """
    features = model.get_layer("probabilities").input  # (B, D)
    probabilities = output_layer(num_classes, multi_label)(features)  # (B, C)
    return keras.Model(model.inputs, probabilities, name=model.name)


def freeze(model: keras.Model, part: str) -> list[str]:
    """Make ``part`` of a :func:`build_text_classifier` model non-trainable.

    Args:
        part: ``embeddings`` (the ``embedding`` layer: token embeddings, and
            position embeddings for Transformers), ``encoder`` (every layer
            below the pooling: embeddings, recurrent layers or Transformer
            blocks) or ``none``.

    Returns:
        Names of the layers made non-trainable that hold weights.
    """
    if part not in FREEZE_CHOICES:
        raise ValueError(f"`part` must be one of {FREEZE_CHOICES}. Received: part={part!r}")
    frozen = []
    for layer in model.layers:
        if part == "none" or isinstance(layer, keras.layers.InputLayer):
            continue
        if (part == "embeddings" and layer.name == "embedding") or (
            part == "encoder" and layer.name not in HEAD_LAYERS
        ):
            layer.trainable = False
            if layer.weights:
                frozen.append(layer.name)
    return frozen
