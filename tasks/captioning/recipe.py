"""The training side of the captioning recipe: data, vocabulary, image features,
model, validation metrics and export (fine-tuning an export is
:mod:`tasks.captioning.finetuning`, the serving side :mod:`tasks.captioning.serving`)."""

from __future__ import annotations

import logging
import os
import time

import keras
import numpy as np

from seqtasks.caption_metrics import caption_scores, normalize_caption
from seqtasks.data.captions import (
    CaptionData,
    as_grid,
    caption_texts,
    check_images,
    load_captions,
    load_validation_captions,
)
from seqtasks.data.pipeline import split_indices
from seqtasks.data.teacher_forcing import caption_batches
from seqtasks.diagnostics import empty_outputs, low_bleu, warn_if_undertrained
from seqtasks.errors import ConfigError, DataError
from seqtasks.images import (
    cached_image_features,
)
from seqtasks.models.captioning import ImageCaptioner, build_captioner
from seqtasks.models.image_encoders import (
    build_image_encoder,
    mobilenet_v2_weights,
    split_mobilenet_v2,
)
from seqtasks.recipe import Prepared
from seqtasks.subword import (
    SubwordTokenizer,
    learned_tokenizer,
    subword_coverage,
)
from tasks.captioning.config import CaptioningConfig, CaptioningInfo
from tasks.captioning.finetuning import CaptioningFinetuning
from tasks.captioning.serving import (
    DECODER_FILE,
    IMAGE_ENCODER_FILE,
    VOCABULARY_FILE,
    bleu_4_callback,
    make_generator,
)
from tasks.registry import ENTRIES

_ENTRY = ENTRIES["captioning"]

log = logging.getLogger("tasks.captioning")


class CaptioningRecipe(CaptioningFinetuning):
    """One-to-many captioning on the recipe contract of :mod:`seqtasks.recipe`.

    Batches follow the seq2seq layout with image features as the encoder
    input: ``({"image_features": float32 (B, P, C), "decoder_token_ids":
    y[:, :-1]}, y[:, 1:])`` (teacher forcing); when the image encoder trains
    too (``--set encoder=cnn``), ``{"images": float32 (B, S, S, 3), ...}``
    instead. With ``fine_tune_blocks`` the features are the frozen blocks' cached
    output and the decoder model runs the trainable top blocks on them. Export: ``image_bytes`` (tf.string ``[None]``,
    encoded JPEG/PNG/GIF/BMP) in, ``caption`` (tf.string ``[None]``) and
    ``score`` (float32 ``[None]``, length-normalised log-probability) out; a
    model trained on feature vectors takes ``features`` (float32 ``[None,
    dim]`` or ``[None, positions, dim]``) instead.
    """

    # What the CLI shows before TensorFlow is imported: one copy, in tasks/registry.py.
    name = _ENTRY.name
    task_type = _ENTRY.task_type
    description = _ENTRY.description
    models = _ENTRY.models
    extra_commands = _ENTRY.extra_commands
    config_class = CaptioningConfig

    # --- data ----------------------------------------------------------------------------

    def load_data(self, config: CaptioningConfig) -> CaptionData:
        if not config.data:
            raise ConfigError(_ENTRY.no_data)
        data = load_captions(
            config.data,
            split=config.split,
            image_dir=config.image_dir,
            captions_file=config.captions_file,
            max_examples=config.max_examples,
            **self._record_options(config),
        )
        if data.images is not None:
            if config.encoder == "mobilenet_v2":
                mobilenet_v2_weights(config.encoder_weights)  # missing weights: fail early
            # Every image is decoded once now, so a file that is not an image (or a corrupt
            # one) fails before anything is written: no run folder, no cache entry, no
            # fit() stopped halfway. About 1 ms per 160 px JPEG.
            check_images(data)
        for image_id, captions in zip(data.ids, data.captions):
            if not any(normalize_caption(c) for c in captions):
                raise DataError(
                    f"{data.source}: image {image_id}: no caption has a word in it "
                    f"(found {captions[0]!r}); expected words, not just punctuation"
                )
        return data

    @staticmethod
    def _record_options(config: CaptioningConfig) -> dict:
        return {
            "format": config.format,
            "image_column": config.image_column,
            "caption_column": config.caption_column,
            "on_bad_rows": config.on_bad_rows,
        }

    def prepare(
        self, config: CaptioningConfig, data: CaptionData, run_dir: str, *, image_encoder=None
    ) -> Prepared:
        """Split, learn (or reuse) the vocabulary, encode images, make tf.data pipelines.

        ``image_encoder``: the encoder to use instead of a new one from
        ``config`` (fine-tuning: the export's).
        """
        if config.validation_data:
            train = data
            val = load_validation_captions(
                config.validation_data,
                data,
                training_data=config.data,
                image_dir=config.image_dir,
                image_column=config.image_column,
                caption_column=config.caption_column,
                on_bad_rows=config.on_bad_rows,
            )
        else:
            train_idx, val_idx = split_indices(len(data), config.validation_split, config.seed)
            train, val = data.subset(train_idx), data.subset(val_idx)

        if data.features is not None and config.horizontal_flip:  # before writing anything
            raise ConfigError(
                f"config field 'horizontal_flip' needs images; {config.data} holds "
                "feature vectors (set horizontal_flip=false)"
            )
        start = time.perf_counter()
        reused = os.path.isfile(os.path.join(run_dir, "vocabulary.txt"))
        tokenizer = self._learn_tokenizer(config, train, run_dir)
        log.info(
            "%s a vocabulary of %d tokens in %.1f s",
            "reused" if reused else "learned",
            tokenizer.vocabulary_size,
            time.perf_counter() - start,
        )
        encoding: dict = {}
        mirrored = backbone = None
        if data.features is not None:
            train_inputs, val_inputs = as_grid(train.features), as_grid(val.features)
            image_encoder = None
        else:
            if image_encoder is None:
                image_encoder = build_image_encoder(
                    config.encoder,
                    config.image_size,
                    config.encoder_weights,
                    config.fine_tune_blocks,
                )
                if config.fine_tune_blocks and not config.end_to_end:
                    # Cache what the frozen blocks give; the top ones join the decoder.
                    image_encoder, backbone = split_mobilenet_v2(
                        image_encoder, config.fine_tune_blocks
                    )
            if config.end_to_end:
                train_inputs = train.images.read_many(train.ids)
                val_inputs = val.images.read_many(val.ids)
                mirrored = True if config.horizontal_flip else None
            else:
                train_inputs, val_inputs, mirrored, encoding = self._cached_features(
                    config, image_encoder, data, train, val
                )
        train_ds, dropped = caption_batches(
            train, train_inputs, tokenizer, config, shuffle=True, mirrored=mirrored
        )
        if dropped == train.num_captions:
            raise DataError(
                f"{config.data}: every training caption is longer than "
                f"sequence_length={config.sequence_length} tokens; raise it with --set sequence_length=N"
            )
        if dropped:
            log.warning(
                "dropped %d of %d training captions longer than %d tokens",
                dropped,
                train.num_captions,
                config.sequence_length,
            )
        val_ds, val_dropped = caption_batches(val, val_inputs, tokenizer, config, shuffle=False)
        log.info(
            "%d training images (%d captions) / %d validation images; %d tokens",
            len(train),
            train.num_captions - dropped,
            len(val),
            tokenizer.vocabulary_size,
        )
        grid_shape = (
            list(np.shape(train_inputs)[1:])
            if not isinstance(train_inputs, list)
            else list(image_encoder.output.shape[1:])
        )
        # What the export takes: feature vectors (dim,) as given, or feature grids.
        feature_shape = list(data.features.shape[1:]) if data.features is not None else grid_shape
        info = CaptioningInfo(
            tokenizer, val, image_encoder, val_inputs, grid_shape, feature_shape, backbone
        )
        return Prepared(
            train=train_ds,
            validation=val_ds,
            info=info,
            metadata={
                "inputs": "features" if data.features is not None else "images",
                "feature_shape": feature_shape,
                "data": {
                    "examples": len(data),
                    "train_images": len(train),
                    "train_captions": train.num_captions - dropped,
                    "validation_images": len(val),
                    "validation_captions": val.num_captions,
                    "dropped_too_long": dropped,
                    "validation_too_long": val_dropped,
                    **(
                        {"skipped_bad_rows": data.skipped_bad_rows}
                        if data.skipped_bad_rows is not None
                        else {}
                    ),
                },
                "vocabulary_size": tokenizer.vocabulary_size,
                "feature_encoding": encoding,
                # How the vocabulary covers the training captions (finetune compares new data).
                "subwords": {"captions": subword_coverage(tokenizer, caption_texts(train))},
            },
        )

    def _learn_tokenizer(self, config, train: CaptionData, run_dir: str) -> SubwordTokenizer:
        """WordPiece over the normalised training captions (reused if ``run_dir`` has one)."""
        return learned_tokenizer(
            os.path.join(run_dir, VOCABULARY_FILE),
            caption_texts(train),
            config.vocabulary_size,
            config.sequence_length,
            lowercase=True,
            min_frequency=config.min_frequency,
        )

    def _cached_features(self, config, image_encoder, data, train, val):
        """Frozen-encoder feature grids of the training and validation images (cached),
        and with ``horizontal_flip`` of the training images' mirror images (else None).

        Returns ``(train, validation, mirrored, encoding)``."""
        parts = [("train", train, False), ("validation", val, False)]
        if config.horizontal_flip:
            parts.append(("train_mirrored", train, True))
        results, encoding = [], {}
        for name, part, mirror in parts:
            features, stats = cached_image_features(
                image_encoder,
                part.images.read_many,
                part.ids,
                image_size=config.image_size,
                source=part.images.description,
                cache_dir=config.feature_cache or None,
                mirror=mirror,
            )
            results.append(features)
            encoding[name] = {"images": len(part), **stats}
        mirrored = results[2] if config.horizontal_flip else None
        return results[0], results[1], mirrored, encoding

    # --- model ---------------------------------------------------------------------------

    def build_model(self, config: CaptioningConfig, prepared: Prepared) -> keras.Model:
        grid_shape = prepared.info.grid_shape
        decoder = build_captioner(
            config,
            prepared.info.tokenizer.vocabulary_size,
            grid_shape,
            backbone=prepared.info.backbone,
        )
        tokens = np.full((1, 2), 2, np.int32)
        decoder(
            {
                "image_features": np.zeros((1, *grid_shape), np.float32),
                "decoder_token_ids": tokens,
            }
        )
        if not config.end_to_end or prepared.info.image_encoder is None:
            return decoder
        model = ImageCaptioner(prepared.info.image_encoder, decoder)
        size = config.image_size
        model({"images": np.zeros((1, size, size, 3), np.float32), "decoder_token_ids": tokens})
        return model

    def slow_variables(self, model, config: CaptioningConfig) -> tuple[list, float]:
        """The fine-tuned image-encoder blocks (``fine_tune_blocks``) learn at
        ``fine_tune_lr_factor`` times the decoder's rate."""
        backbone = backbone_of(model)
        if backbone is None:
            return [], 1.0
        return list(backbone.trainable_weights), config.fine_tune_lr_factor

    # --- metrics -------------------------------------------------------------------------

    def selection(self, config: CaptioningConfig) -> tuple[str, str]:
        """``("val_bleu_4", "max")`` with ``select_by=bleu_4``, else the validation loss."""
        return ("val_bleu_4", "max") if config.select_by == "bleu_4" else ("val_loss", "min")

    def epoch_callbacks(self, model, prepared: Prepared, config: CaptioningConfig) -> list:
        """With ``select_by=bleu_4``: :func:`~tasks.captioning.serving.bleu_4_callback`."""
        return [bleu_4_callback(prepared, config)] if config.select_by == "bleu_4" else []

    def evaluate(self, model, prepared: Prepared, config: CaptioningConfig) -> dict:
        """Validation metrics of the best weights.

        ``val_nll`` (nats per caption token, no label smoothing), ``val_perplexity``
        and ``val_token_accuracy`` under teacher forcing; corpus ``val_bleu_1`` ..
        ``val_bleu_4`` and ``val_cider_d`` of the validation images' generated
        captions against all their references. Mostly empty captions or BLEU-4 below 1
        log an "undertrained" warning.
        """
        inputs = prepared.info.validation_inputs  # encoded images, or feature grids
        shape = None if isinstance(inputs, list) else tuple(np.shape(inputs)[1:])
        generator = make_generator(model, prepared.info, config, feature_shape=shape)
        val = prepared.info.validation_data
        forced, decoding, captions = self.generation_metrics(
            model, prepared.validation, generator, inputs, config, batch_size=32
        )
        scores = caption_scores(captions, val.captions)
        warn_if_undertrained(log, empty_outputs(captions), low_bleu(scores["bleu_4"], "BLEU-4"))
        return {
            **forced,
            **{
                f"val_{k}": v
                for k, v in scores.items()
                if k.startswith(("bleu_", "cider")) and k != "bleu_signature"
            },
            "bleu_signature": scores["bleu_signature"],
            **decoding,
            "examples": [
                {"image": val.ids[i], "caption": captions[i], "references": val.captions[i]}
                for i in range(min(3, len(val)))
            ],
        }

    # --- export --------------------------------------------------------------------------

    def export(self, model, prepared: Prepared, config: CaptioningConfig, metadata: dict) -> str:
        """Encoded images (``image_bytes``) or feature vectors (``features``) in, ``caption``
        and ``score`` out (``serving_default`` only, as before the generation core)."""
        generator = make_generator(model, prepared.info, config)
        image_encoder = getattr(generator.source, "image_encoder", None)
        if image_encoder is not None:
            inputs = {"image_bytes": "tf.string [None]: encoded JPEG, PNG, GIF or BMP images"}
        else:
            shape = ", ".join(map(str, prepared.info.feature_shape))
            inputs = {"features": f"tf.float32 [None, {shape}]"}
        extra = {
            DECODER_FILE: generator.model.save,
            VOCABULARY_FILE: prepared.info.tokenizer.vocabulary_file,
        }
        if image_encoder is not None:
            extra[IMAGE_ENCODER_FILE] = image_encoder.save
        return self.export_generator(
            generator,
            prepared,
            config,
            metadata,
            inputs=inputs,
            outputs={
                "caption": "tf.string [None]: the generated caption (lower case, no punctuation)",
                "score": "tf.float32 [None]: log P(caption|image) / its length in tokens "
                "([END] included)",
            },
            preprocessing={
                "image_size": config.image_size,
                "resize": "bilinear, antialiased, aspect ratio not kept",
                "encoder": config.encoder if image_encoder is not None else None,
                "feature_dtype": getattr(generator.source, "feature_dtype", None),
                "tokenizer": "wordpiece",
                "sequence_length": config.sequence_length,
                "caption_normalization": "lower case, punctuation removed",
            },
            extra_files=extra,
            score=False,
        )


def backbone_of(model):
    """The trainable image-encoder top inside a captioner (``fine_tune_blocks``), or None."""
    if isinstance(model, ImageCaptioner):
        model = model.decoder
    return getattr(getattr(model, "encoder", None), "backbone", None)
