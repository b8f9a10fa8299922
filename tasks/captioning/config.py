"""The captioning recipe's config (``--set key=value`` fields) and what ``prepare`` hands on."""

from __future__ import annotations

import dataclasses
from typing import Any

from seqtasks.data.captions import CaptionData
from seqtasks.subword import SubwordTokenizer
from tasks.captioning_config import CaptioningConfig

__all__ = ["CaptioningConfig", "CaptioningInfo"]


@dataclasses.dataclass
class CaptioningInfo:
    """What :meth:`CaptioningRecipe.prepare` hands to the later steps (``Prepared.info``).

    Attributes:
        tokenizer: the caption :class:`~seqtasks.subword.SubwordTokenizer`.
        validation_data: the validation :class:`~seqtasks.data.captions.CaptionData`.
        image_encoder: the Keras image encoder (None for feature-vector data).
        validation_inputs: the validation images' encoded bytes (end to end) or
            float32 feature grids ``(N, P, C)`` (cached features, vectors).
        grid_shape: ``[P, C]``, the decoder model's input grid: the features it attends
            over, or with a ``backbone`` the frozen blocks' grid it runs the backbone on.
        feature_shape: what the export takes per example: the grid, or the data's
            vector shape ``[C]``.
        backbone: with ``fine_tune_blocks``, the image encoder's trainable top
            (:class:`~seqtasks.models.image_encoders.BackboneTop`) that the decoder model
            runs on the frozen part's cached grid; else None.
    """

    tokenizer: SubwordTokenizer
    validation_data: CaptionData
    image_encoder: Any
    validation_inputs: Any
    grid_shape: list[int]
    feature_shape: list[int]
    backbone: Any = None
