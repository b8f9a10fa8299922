"""The captioning recipe's config (``--set key=value`` fields), importable without TensorFlow.

:class:`CaptioningConfig` is re-exported by :mod:`tasks.captioning.config` (and
:mod:`tasks.captioning`); ``cli.py`` checks ``--set`` values and ``--data`` against it
before the recipe (and TensorFlow) is imported.
"""

from __future__ import annotations

import dataclasses

from seqtasks.choices import CAPTION_MODELS, IMAGE_ENCODERS
from seqtasks.config import TrainConfig, option, retune
from seqtasks.config_groups import (
    RecordFields,
    RNNFields,
    ScheduleFields,
    SubwordFields,
    TransformerFields,
)
from seqtasks.decoding_config import DecodingConfig
from seqtasks.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class CaptioningConfig(
    TransformerFields,
    RNNFields,
    SubwordFields,
    ScheduleFields,
    RecordFields,
    DecodingConfig,
    TrainConfig,
):
    """Defaults of the captioning recipe (every field can be set with ``--set key=value``)."""

    data: str = retune(
        TrainConfig,
        "data",
        "",
        help="Training data: a Flickr8k folder, a .csv/.tsv/.jsonl/.parquet of image and "
        "caption rows, or a .npz of vectors.",
    )
    max_examples: int | None = retune(
        TrainConfig,
        "max_examples",
        None,
        help="Use only the first N images (quick runs); None uses all.",
    )
    model: str = option(
        "attention",
        "Decoder: lstm (Show and Tell), attention (Show, Attend and Tell) or transformer.",
        choices=CAPTION_MODELS,
    )
    epochs: int = option(20, "Maximum number of epochs (early stopping may end sooner).", min=1)
    batch_size: int = option(64, "Captions per training batch.", min=1)
    learning_rate: float = option(
        1e-3, "Adam learning rate (the Transformer's peak, reached after warmup_steps).", above=0.0
    )
    reduce_lr_factor: float = option(
        0.5,
        "RNN models: multiply the learning rate by this after an epoch without a better "
        "validation loss (1 = off).",
        min=0.01,
        max=1.0,
    )
    patience: int = option(
        3, "Early stopping: epochs without a better validation loss before stopping.", min=0
    )
    beam_size: int = retune(DecodingConfig, "beam_size", 3)
    format: str = retune(
        RecordFields,
        "format",
        "auto",
        help="Format of a captions file (CSV/TSV/JSONL/Parquet); auto uses the extension.",
    )
    on_bad_rows: str = retune(
        RecordFields,
        "on_bad_rows",
        "error",
        help="Malformed caption rows (wrong number of fields, empty image or caption, bad "
        "UTF-8, invalid JSON, a missing image file): error stops at the first; skip drops them "
        "with a warning (count, first line numbers) and records the count.",
    )
    dropout: float = retune(ScheduleFields, "dropout", 0.3)
    vocabulary_size: int = retune(SubwordFields, "vocabulary_size", 5000)
    sequence_length: int = retune(
        SubwordFields,
        "sequence_length",
        32,
        help="Longest caption in subword tokens ([START]/[END] included); longer training "
        "captions are dropped, generated ones stop there.",
    )
    embedding_dim: int = retune(
        RNNFields, "embedding_dim", 256, help="RNN models: word embedding size."
    )
    attention: str = retune(
        RNNFields,
        "attention",
        "additive",
        help="Attention score (model=attention): additive (Bahdanau/Xu) or multiplicative (Luong).",
    )
    select_by: str = option(
        "loss",
        "What picks the exported epoch (early stopping, best checkpoint, --average-last): "
        "loss (validation NLL under teacher forcing) or bleu_4 (corpus BLEU-4 of the "
        "validation images' captions, decoded as the export decodes after every epoch).",
        choices=("loss", "bleu_4"),
    )
    attention_penalty: float = option(
        0.0,
        "model=attention: weight of the doubly stochastic attention penalty added to the "
        "training loss (Xu et al. 2015, sec. 4.2.1; their lambda is 1), per caption token; "
        "0 = off.",
        min=0.0,
        absent=0.0,  # runs recorded before the field
    )
    attention_gate: bool = option(
        False,
        "model=attention: scale the attention context by a gating scalar beta = "
        "sigmoid(w . h_t + b) predicted from the decoder state (Xu et al. 2015, sec. 4.2.1).",
        absent=False,  # runs recorded before the field
    )
    hidden_dim: int = retune(
        TransformerFields, "hidden_dim", 512, help="RNN decoder units; Transformer d_model."
    )
    intermediate_dim: int = retune(TransformerFields, "intermediate_dim", 1024)
    num_heads: int = retune(TransformerFields, "num_heads", 8)
    split: str = option("train", "Flickr8k split to train on (train, dev, all).", data=True)
    validation_data: str | None = option(
        None,
        "Validation data: a Flickr8k split of --data (e.g. dev) or another records "
        "(.csv/.tsv/.jsonl/.parquet) or .npz file; "
        "None carves validation_split of the training images (by image, so no image is on "
        "both sides).",
        data=True,
    )
    image_dir: str | None = option(
        None,
        "Image folder or .tar (default: the Flickr8k folder's one, or the CSV's folder).",
        data=True,
    )
    captions_file: str | None = option(
        None,
        "Feature data (.npz): the image,caption CSV keyed by vector id (default <stem>.csv).",
        data=True,
    )
    image_column: str | None = option(
        None,
        "Image (or vector id) field of CSV/TSV/JSONL/Parquet captions (default: image).",
        data=True,
    )
    caption_column: str | None = option(
        None, "Caption field of CSV/TSV/JSONL/Parquet captions (default: caption).", data=True
    )
    encoder: str = option(
        "mobilenet_v2",
        "Image encoder: mobilenet_v2 (ImageNet weights) or cnn (small CNN trained from scratch).",
        choices=IMAGE_ENCODERS,
    )
    encoder_weights: str = option(
        "imagenet",
        "MobileNetV2 weights: imagenet (found in $KERAS_HOME/models), an .h5 path, or none.",
    )
    image_size: int = option(160, "Images are resized to this many pixels square.", min=32)
    fine_tune_blocks: int = option(
        0,
        "MobileNetV2 blocks (from the top, with its last 1x1 convolution) trained with the "
        "decoder, batch normalisation kept in inference mode; 0 keeps it frozen. The "
        "frozen blocks' output is cached, so only the top blocks run in training.",
        min=0,
        max=16,
    )
    fine_tune_lr_factor: float = option(
        0.1,
        "With fine_tune_blocks: the MobileNetV2 blocks learn at learning_rate times this "
        "(1 = the decoder's rate).",
        above=0.0,
        max=1.0,
        absent=0.1,  # runs recorded before the field
    )
    horizontal_flip: bool = option(
        False,
        "Also train on each training image's mirror image (flipped left to right), with "
        "'left' and 'right' swapped in its captions: twice the examples per epoch (and, "
        "with a frozen encoder, twice the features to cache). Needs images, not feature "
        "vectors.",
        absent=False,  # runs recorded before the field
    )
    feature_cache: str = option(
        "runs/feature_cache",
        "Folder caching frozen-encoder features per dataset and encoder ('' = no cache).",
    )
    num_layers: int = option(2, "Transformer decoder blocks.", min=1)
    num_encoder_layers: int = option(0, "Transformer encoder blocks over the feature grid.", min=0)

    def check(self) -> None:
        """The groups' checks; fine-tuning blocks only for MobileNetV2."""
        super().check()
        if self.attention_penalty and self.model != "attention":
            raise ConfigError(
                "config field 'attention_penalty' applies to model=attention; "
                f"received: model={self.model}"
            )
        if self.attention_gate and self.model != "attention":
            raise ConfigError(
                "config field 'attention_gate' applies to model=attention; "
                f"received: model={self.model}"
            )
        if self.fine_tune_blocks and self.encoder != "mobilenet_v2":
            raise ConfigError(
                "config field 'fine_tune_blocks' applies to encoder=mobilenet_v2; "
                f"the {self.encoder} encoder is always trained"
            )

    @property
    def end_to_end(self) -> bool:
        """Whether the whole image encoder trains with the decoder (no feature cache then):
        ``encoder=cnn``. With ``fine_tune_blocks`` the frozen blocks' output is cached and
        the top blocks are part of the decoder model."""
        return self.encoder == "cnn"
