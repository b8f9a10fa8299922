"""Fine-tuning a captioning export on new captions: its decoder, image encoder and
vocabulary are loaded and checked against the new data (the training side is
:mod:`tasks.captioning.recipe`, which builds on this class)."""

from __future__ import annotations

import logging
import os

import numpy as np

from seqtasks.data.captions import CaptionData, caption_texts
from seqtasks.errors import DataError, UserError
from seqtasks.export import extra_files
from seqtasks.inference import load_keras_model
from seqtasks.models.captioning import ImageCaptioner
from seqtasks.models.seq2seq import freeze as freeze_layers
from seqtasks.recipe import FinetunePlan
from seqtasks.subword import SubwordTokenizer, report_word_coverage, subword_coverage
from tasks.captioning.config import CaptioningConfig
from tasks.captioning.serving import (
    DECODER_FILE,
    IMAGE_ENCODER_FILE,
    VOCABULARY_FILE,
    CaptioningServing,
)

log = logging.getLogger("tasks.captioning")


class CaptioningFinetuning(CaptioningServing):
    """``finetune_config`` and ``plan_finetune`` of the captioning recipe (the recipe's
    ``prepare`` does the rest)."""

    def finetune_config(self, metadata: dict, **overrides) -> CaptioningConfig:
        """The export's config with the new data; ``encoder_weights`` is ``none``.

        The image encoder comes from the export (``image_encoder.keras``), so
        no ImageNet weight file is needed to fine-tune.
        """
        return super().finetune_config(metadata, **{"encoder_weights": "none", **overrides})

    def plan_finetune(
        self,
        config: CaptioningConfig,
        data: CaptionData,
        version_dir: str,
        metadata: dict,
        *,
        new_head: bool = False,
        freeze: str = "none",
    ) -> FinetunePlan:
        """Load the export's decoder, image encoder and vocabulary; check the new captions.

        New images go through the export's image encoder (its features are
        cached under a key that includes a digest of its weights, see
        :func:`seqtasks.images.cached_image_features`); when it was trained
        end to end (``encoder=cnn``), it trains on with the decoder unless
        ``freeze="encoder"``; the top blocks of a ``fine_tune_blocks`` export are part
        of its decoder (they train on, at ``fine_tune_lr_factor`` times the rate,
        unless ``freeze="encoder"``) and the image encoder is its frozen rest. The vocabulary is fixed:
        the share of the new captions' words that are not whole vocabulary
        tokens, the ``[UNK]`` share and the pieces per word are logged (a
        warning above :data:`seqtasks.subword.SPLIT_WORDS_WARNING`). ``freeze``: see
        :func:`seqtasks.models.seq2seq.freeze`; ``encoder`` also freezes an
        image encoder that was trained end to end.

        Raises:
            UserError: for ``new_head`` (a captioning model has no labels).
            DataError: images for a feature-vector model or the other way round,
                or vectors of another shape.
            ExportError: if the export lacks its Keras models or vocabulary.
        """
        if new_head:
            raise UserError(
                "--new-head: a captioning model has no classification head (no labels); "
                "fine-tune without it"
            )
        takes_features = metadata.get("inputs") == "features"
        if takes_features and data.features is None:
            raise DataError(f"{config.data}: this model takes feature vectors; expected a .npz")
        if not takes_features and data.features is not None:
            raise DataError(
                f"{config.data}: this model takes images; expected a Flickr8k folder or an "
                "image,caption CSV"
            )
        if takes_features and list(data.features.shape[1:]) != list(metadata["feature_shape"]):
            raise DataError(
                f"{config.data}: vectors of shape {tuple(data.features.shape[1:])}; this model "
                f"takes {tuple(metadata['feature_shape'])}"
            )
        needed = [DECODER_FILE, VOCABULARY_FILE] + ([] if takes_features else [IMAGE_ENCODER_FILE])
        decoder_file, vocabulary_file, *encoder_file = extra_files(version_dir, needed, "fine-tune")
        tokenizer = SubwordTokenizer(vocabulary_file, config.sequence_length, lowercase=True)
        coverage = subword_coverage(tokenizer, caption_texts(data))
        original = (metadata.get("subwords") or {}).get("captions") or {}
        coverage["training_pieces_per_word"] = original.get("pieces_per_word")
        report_word_coverage(coverage)
        decoder = load_keras_model(decoder_file)
        image_encoder = None if takes_features else load_keras_model(encoder_file[0])
        frozen = freeze_layers(decoder, freeze)
        end_to_end = image_encoder is not None and config.end_to_end
        if image_encoder is not None and not end_to_end and image_encoder.trainable_weights:
            # An export trained end to end with fine_tune_blocks before the frozen part
            # was split off (2026-12-06): its encoder is used frozen, on cached features.
            log.warning(
                "%s: its image encoder was fine-tuned end to end (fine_tune_blocks=%d, an "
                "older export); it stays frozen here and only the decoder trains",
                version_dir,
                config.fine_tune_blocks,
            )
        if end_to_end and freeze == "encoder":
            image_encoder.trainable = False
            frozen.insert(0, image_encoder.name)
        if frozen:
            log.info("frozen (%s): %s", freeze, ", ".join(frozen))
        model = decoder
        if end_to_end:
            model = ImageCaptioner(image_encoder, decoder)
            size = config.image_size
            tokens = np.full((1, 2), 2, np.int32)
            model({"images": np.zeros((1, size, size, 3), np.float32), "decoder_token_ids": tokens})
        facts = {
            "finetuned_from": os.path.abspath(version_dir),
            "new_head": False,
            "freeze": freeze,
            "frozen_layers": frozen,
            "out_of_vocabulary": {"captions": coverage},
        }

        # prepare() reuses a vocabulary found in the run dir instead of learning one.
        return self.finetune_plan(
            model,
            facts,
            lambda run_dir: self.prepare(config, data, run_dir, image_encoder=image_encoder),
            {vocabulary_file: VOCABULARY_FILE},
        )
