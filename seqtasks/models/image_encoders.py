"""Image encoders for captioning: pixels in, a spatial grid of feature vectors out.

Both encoders take float32 ``(batch, image_size, image_size, 3)`` RGB pixel
values in ``[0, 255]`` (what :func:`decode_image` gives) and return float32
``(batch, positions, channels)``: the last convolutional feature map
flattened row-major, one "annotation vector" per image region (Xu et al.
2015, sec. 3.1.1). Pixel scaling is inside the encoder, so an export needs
nothing but the decoded image.

- ``mobilenet_v2``: ``keras.applications.MobileNetV2`` (Sandler et al. 2018)
  without its classifier, ImageNet weights, frozen by default. At 160 px the
  grid is 5x5x1280. ``fine_tune_blocks=N`` makes the top ``N`` inverted-
  residual blocks (``block_16``, ``block_15``, ...) and the last 1x1
  convolution trainable; :func:`split_mobilenet_v2` then cuts the network
  below them, so the frozen part's output can be cached like frozen features
  and only the top blocks run in training. Batch normalisation stays in
  inference mode (the usual Keras transfer-learning practice).
- ``cnn``: a small VGG-style network trained from scratch (five
  conv-BN-ReLU-pool stages, 32 to 256 channels), for users without
  pretrained weights. At 160 px the grid is 5x5x256.
"""

from __future__ import annotations

import os

import keras

from seqtasks.choices import IMAGE_ENCODERS  # noqa: F401 (re-exported)
from seqtasks.errors import ConfigError

MOBILENET_V2_WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
MOBILENET_V2_BLOCKS = 16


def mobilenet_v2_weights(weights: str = "imagenet") -> str | None:
    """Path of the MobileNetV2 ImageNet weight file, found without a download.

    ``weights`` may be ``"imagenet"`` (looked up as
    ``$KERAS_HOME/models/<file>``, then ``~/.keras/models/<file>``), a path to
    an ``.h5`` weight file, or ``"none"`` (random initialisation, returns None).
    The 224-px no-top file loads at any input size (the network is fully
    convolutional); passing the path avoids Keras' per-size download.

    Raises:
        ConfigError: if the file cannot be found.
    """
    if weights == "none":
        return None
    if weights != "imagenet":
        if not os.path.isfile(weights):
            raise ConfigError(f"config field 'encoder_weights': no such file: {weights}")
        return weights
    homes = [os.environ.get("KERAS_HOME"), os.path.join(os.path.expanduser("~"), ".keras")]
    for home in homes:
        if home:
            path = os.path.join(home, "models", MOBILENET_V2_WEIGHTS)
            if os.path.isfile(path):
                return path
    raise ConfigError(
        f"config field 'encoder_weights': ImageNet weights for MobileNetV2 ({MOBILENET_V2_WEIGHTS}) "
        "not found in $KERAS_HOME/models or ~/.keras/models; set KERAS_HOME (e.g. "
        "KERAS_HOME=../shared/keras_home), pass a file with --set encoder_weights=PATH, or "
        "train without them with --set encoder=cnn"
    )


def build_image_encoder(
    encoder: str = "mobilenet_v2",
    image_size: int = 160,
    weights: str = "imagenet",
    fine_tune_blocks: int = 0,
    name: str = "image_encoder",
) -> keras.Model:
    """A functional model: float32 ``(B, S, S, 3)`` pixels in ``[0, 255]`` -> ``(B, P, C)``.

    Args:
        encoder: ``"mobilenet_v2"`` or ``"cnn"``.
        image_size: input height and width ``S`` in pixels (default 160).
        weights: MobileNetV2 weights (see :func:`mobilenet_v2_weights`);
            ignored for ``cnn``.
        fine_tune_blocks: MobileNetV2 blocks (from the top) left trainable;
            0 freezes the whole network. ``cnn`` is always trainable.

    Raises:
        ConfigError: unknown encoder, weights not found, or more blocks than exist.
    """
    if encoder not in IMAGE_ENCODERS:
        raise ConfigError(
            f"config field 'encoder': expected one of {', '.join(IMAGE_ENCODERS)}; received: {encoder!r}"
        )
    pixels = keras.Input((image_size, image_size, 3), dtype="float32", name="pixels")
    if encoder == "mobilenet_v2":
        if not 0 <= fine_tune_blocks <= MOBILENET_V2_BLOCKS:
            raise ConfigError(
                f"config field 'fine_tune_blocks': MobileNetV2 has {MOBILENET_V2_BLOCKS} blocks; "
                f"received: {fine_tune_blocks}"
            )
        base = keras.applications.MobileNetV2(
            input_shape=(image_size, image_size, 3),
            include_top=False,
            weights=mobilenet_v2_weights(weights),
        )
        trainable = {f"block_{MOBILENET_V2_BLOCKS - i}_" for i in range(fine_tune_blocks)}
        base.trainable = fine_tune_blocks > 0
        for layer in base.layers:
            layer.trainable = fine_tune_blocks > 0 and (
                any(layer.name.startswith(prefix) for prefix in trainable)
                or layer.name in ("Conv_1", "Conv_1_bn", "out_relu")
            )
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")(pixels)
        # BN in inference mode when this model is called with training=False; a Keras
        # functional model passes its caller's training flag on to every layer, which is
        # why the trainable top runs apart from here (split_mobilenet_v2, BackboneTop).
        grid = base(x, training=False)
    else:
        x = keras.layers.Rescaling(1 / 255.0, name="to_unit_range")(pixels)
        for i, filters in enumerate((32, 64, 128, 256, 256)):
            x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv_{i}")(x)
            x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
            x = keras.layers.ReLU(name=f"relu_{i}")(x)
            x = keras.layers.MaxPooling2D(name=f"pool_{i}")(x)
        grid = x
    height, width, channels = grid.shape[1], grid.shape[2], grid.shape[3]
    features = keras.layers.Reshape((height * width, channels), name="annotations")(grid)
    return keras.Model(pixels, features, name=name)


def _block_output(base: keras.Model, block: int):
    """The output tensor of MobileNetV2's inverted-residual block ``block`` (0 = the
    first, ``expanded_conv``): its residual sum where it has one, else its projection."""
    if block == 0:
        return base.get_layer("expanded_conv_project_BN").output
    names = {layer.name for layer in base.layers}
    name = f"block_{block}_add" if f"block_{block}_add" in names else f"block_{block}_project_BN"
    return base.get_layer(name).output


def split_mobilenet_v2(image_encoder: keras.Model, fine_tune_blocks: int):
    """Cut a MobileNetV2 encoder below its trainable blocks: ``(frozen, backbone_top)``.

    ``frozen``: float32 ``(B, S, S, 3)`` pixels in ``[0, 255]`` -> float32 ``(B, P', C')``,
    the output of the block under the first trainable one, flattened row-major (a
    ``(B, 7, 7, 160)`` grid at 224 px for ``fine_tune_blocks=1``), with no trainable
    weights: its outputs can be cached like frozen features. ``backbone_top``:
    ``(B, P', C')`` -> ``(B, P, 1280)``, the top ``fine_tune_blocks`` blocks and the last
    1x1 convolution, always in inference mode (batch normalisation uses its moving
    statistics; MobileNetV2 has no dropout), so ``backbone_top(frozen(x))`` equals
    ``image_encoder(x, training=False)``. Both share their layers (and weights) with
    ``image_encoder``.

    Args:
        image_encoder: a ``mobilenet_v2`` model of :func:`build_image_encoder`.
        fine_tune_blocks: int in ``[1, 16]``, the top blocks that train.

    Raises:
        ConfigError: for a ``fine_tune_blocks`` outside ``[1, 16]``.
    """
    if not 1 <= fine_tune_blocks <= MOBILENET_V2_BLOCKS:
        raise ConfigError(
            f"config field 'fine_tune_blocks': expected 1 to {MOBILENET_V2_BLOCKS} to split "
            f"MobileNetV2; received: {fine_tune_blocks}"
        )
    base = next(layer for layer in image_encoder.layers if isinstance(layer, keras.Model))
    cut = _block_output(base, MOBILENET_V2_BLOCKS - fine_tune_blocks)
    rows, columns, channels = (int(d) for d in cut.shape[1:])
    below = keras.Model(base.input, cut, name="mobilenet_v2_frozen")
    pixels = keras.Input(image_encoder.input.shape[1:], dtype="float32", name="pixels")
    grid = below(image_encoder.get_layer("to_unit_range")(pixels), training=False)
    features = keras.layers.Reshape((rows * columns, channels), name="annotations")(grid)
    frozen = keras.Model(pixels, features, name=image_encoder.name)
    frozen.trainable = False

    above = keras.Model(cut, base.output, name="mobilenet_v2_top")
    cached = keras.Input((rows * columns, channels), dtype="float32", name="frozen_features")
    x = keras.layers.Reshape((rows, columns, channels), name="frozen_grid")(cached)
    x = above(x)
    out_rows, out_columns, out_channels = (int(d) for d in x.shape[1:])
    x = keras.layers.Reshape((out_rows * out_columns, out_channels), name="top_annotations")(x)
    return frozen, BackboneTop(keras.Model(cached, x, name="backbone_top_graph"))


@keras.saving.register_keras_serializable(package="seqtasks")
class BackboneTop(keras.layers.Layer):
    """The trainable top of an image encoder, run on cached frozen features in inference
    mode: ``(B, P', C')`` float -> float32 ``(B, P, C)``.

    Wraps a functional ``model`` (:func:`split_mobilenet_v2`) and calls it with
    ``training=False`` whatever the caller passes, so its batch normalisation keeps its
    moving statistics while its weights train (a Keras functional model would otherwise
    pass the caller's ``training`` on to every layer).
    """

    def __init__(self, model: keras.Model, **kwargs):
        kwargs.setdefault("name", "backbone_top")
        super().__init__(**kwargs)
        self.model = model
        self.built = True

    @property
    def positions(self) -> int:
        """``P``, the positions of the output grid (a stride can make it smaller than ``P'``)."""
        return int(self.model.output.shape[1])

    def call(self, features, training=None):
        return self.model(keras.ops.cast(features, "float32"), training=False)

    def get_config(self):
        return {**super().get_config(), "model": keras.saving.serialize_keras_object(self.model)}

    @classmethod
    def from_config(cls, config):
        model = keras.saving.deserialize_keras_object(config.pop("model"))
        return cls(model, **config)


def grid_shape(image_encoder: keras.Model) -> tuple[int, int]:
    """``(rows, columns)`` of an encoder's feature grid (for attention plots)."""
    reshape = image_encoder.get_layer("annotations")
    shape = reshape.input.shape
    return int(shape[1]), int(shape[2])
