"""Image captioning, the one-to-many recipe: an image (or a feature vector) in, a sentence out.

Defaults: a frozen ImageNet MobileNetV2 turns each 160 px image into a 5x5 grid
of 1280-d features, computed once per dataset and cached on disk; an LSTM
decoder whose initial state comes from the mean feature attends over the grid
at every word (Show, Attend and Tell); captions are WordPiece subwords of
normalised (lower-case, no punctuation) text; evaluation decodes with beam
search and scores corpus BLEU-1..4 against all reference captions (sacreBLEU)
and CIDEr-D. The export takes encoded JPEG/PNG bytes and returns captions:
decoding, resizing, the CNN, beam search and detokenization all run inside
the SavedModel. The decoder classes and the decoding code are the
translation recipe's (:mod:`seqtasks.models.captioning`,
:mod:`seqtasks.decoding`).

    python cli.py train captioning --data ../shared/data/flickr8k
    python cli.py predict saved_models/captioning photo.jpg another.png
    python cli.py evaluate saved_models/captioning --data ../shared/data/flickr8k --split dev
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from seqtasks.caption_metrics import caption_scores, normalize_caption
from seqtasks.config import TrainConfig, option, retune
from seqtasks.config_groups import (
    RecordFields,
    RNNFields,
    ScheduleFields,
    SubwordFields,
    TransformerFields,
)
from seqtasks.data.captions import RECORD_SUFFIXES, CaptionData, load_captions
from seqtasks.data.pipeline import split_indices
from seqtasks.data.teacher_forcing import caption_batches
from seqtasks.decoding import DecodingConfig, options_from_config, stored_options
from seqtasks.errors import ConfigError, DataError, UserError
from seqtasks.export import extra_files
from seqtasks.generation import FeatureSource, Generator, ImageSource
from seqtasks.generation_recipe import GenerationRecipe, decoding_line
from seqtasks.images import (
    cached_image_features,
    check_image,
    decode_images,
    read_feature_file,
    read_image_file,
)
from seqtasks.inference import load_keras_model
from seqtasks.models.captioning import CAPTION_MODELS, ImageCaptioner, build_captioner
from seqtasks.models.image_encoders import (
    IMAGE_ENCODERS,
    build_image_encoder,
    mobilenet_v2_weights,
)
from seqtasks.models.seq2seq import freeze as freeze_layers
from seqtasks.recipe import FinetunePlan, Prepared
from seqtasks.subword import (
    SubwordTokenizer,
    learned_tokenizer,
    report_word_coverage,
    subword_coverage,
)

log = logging.getLogger(__name__)

# What an export keeps in assets.extra/ besides metadata.json (plots, fine-tuning).
VOCABULARY_FILE = "vocabulary.txt"
DECODER_FILE = "decoder.keras"
IMAGE_ENCODER_FILE = "image_encoder.keras"


# --- config ------------------------------------------------------------------------------


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
        "MobileNetV2 blocks (from the top) trained with the decoder; 0 keeps it frozen and "
        "lets its features be cached.",
        min=0,
        max=16,
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
        if self.fine_tune_blocks and self.encoder != "mobilenet_v2":
            raise ConfigError(
                "config field 'fine_tune_blocks' applies to encoder=mobilenet_v2; "
                f"the {self.encoder} encoder is always trained"
            )

    @property
    def end_to_end(self) -> bool:
        """Whether the image encoder trains with the decoder (no feature cache then)."""
        return self.encoder == "cnn" or self.fine_tune_blocks > 0


@dataclasses.dataclass
class CaptioningInfo:
    """What :meth:`CaptioningRecipe.prepare` hands to the later steps (``Prepared.info``).

    Attributes:
        tokenizer: the caption :class:`~seqtasks.subword.SubwordTokenizer`.
        validation_data: the validation :class:`~seqtasks.data.captions.CaptionData`.
        image_encoder: the Keras image encoder (None for feature-vector data).
        validation_inputs: the validation images' encoded bytes (end to end) or
            float32 feature grids ``(N, P, C)`` (cached features, vectors).
        grid_shape: ``[P, C]``, the feature grid the decoder attends over.
        feature_shape: what the export takes per example: the grid, or the data's
            vector shape ``[C]``.
    """

    tokenizer: SubwordTokenizer
    validation_data: CaptionData
    image_encoder: Any
    validation_inputs: Any
    grid_shape: list[int]
    feature_shape: list[int]


# --- recipe ------------------------------------------------------------------------------


class CaptioningRecipe(GenerationRecipe):
    """One-to-many captioning on the recipe contract of :mod:`seqtasks.recipe`.

    Batches follow the seq2seq layout with image features as the encoder
    input: ``({"image_features": float32 (B, P, C), "decoder_token_ids":
    y[:, :-1]}, y[:, 1:])`` (teacher forcing); when the image encoder trains
    too (``--set encoder=cnn`` or ``fine_tune_blocks``), ``{"images": float32
    (B, S, S, 3), ...}`` instead. Export: ``image_bytes`` (tf.string ``[None]``,
    encoded JPEG/PNG/GIF/BMP) in, ``caption`` (tf.string ``[None]``) and
    ``score`` (float32 ``[None]``, length-normalised log-probability) out; a
    model trained on feature vectors takes ``features`` (float32 ``[None,
    dim]`` or ``[None, positions, dim]``) instead.
    """

    name = "captioning"
    task_type = "one-to-many"
    description = "Image captioning: an image (or a feature vector) in, a sentence out."
    config_class = CaptioningConfig
    extra_commands = frozenset({"plot-captions"})
    output_name = "caption"
    models = {
        "attention": "LSTM decoder attending over the CNN feature grid (Show, Attend and "
        "Tell; default)",
        "lstm": "LSTM decoder whose initial state comes from the image (Show and Tell)",
        "transformer": "keras-hub TransformerDecoder cross-attending over the feature grid",
    }
    evaluate_options = frozenset(
        {
            "split",
            "image_dir",
            "captions_file",
            "max_examples",
            "format",
            "image_column",
            "caption_column",
            "on_bad_rows",
        }
    )

    # --- data ----------------------------------------------------------------------------

    def load_data(self, config: CaptioningConfig) -> CaptionData:
        if not config.data:
            raise ConfigError(
                "no training data: pass --data PATH (a Flickr8k folder, a .csv/.tsv/.jsonl/"
                ".parquet of image and caption rows, a .npz of feature vectors or tfds:<name>)"
            )
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
            for image_id, encoded in zip(data.ids, data.images.read_many(data.ids)):
                check_image(encoded, f"{data.images.description}: {image_id}", decode=True)
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
            val = self._validation_file(config, data)
        else:
            train_idx, val_idx = split_indices(len(data), config.validation_split, config.seed)
            train, val = data.subset(train_idx), data.subset(val_idx)

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
            if config.end_to_end:
                train_inputs = train.images.read_many(train.ids)
                val_inputs = val.images.read_many(val.ids)
            else:
                train_inputs, val_inputs, encoding = self._cached_features(
                    config, image_encoder, data, train, val
                )
        train_ds, dropped = caption_batches(train, train_inputs, tokenizer, config, shuffle=True)
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
        info = CaptioningInfo(tokenizer, val, image_encoder, val_inputs, grid_shape, feature_shape)
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

    def _validation_file(self, config, data: CaptionData) -> CaptionData:
        """The ``validation_data`` split of a Flickr8k folder, or a .csv/.npz of the same kind."""
        name = config.validation_data
        columns = {
            "image_column": config.image_column,
            "caption_column": config.caption_column,
            "on_bad_rows": config.on_bad_rows,
        }
        if name.lower().endswith(".npz"):
            val = load_captions(name, **columns)
        elif name.lower().endswith(RECORD_SUFFIXES):
            val = load_captions(name, image_dir=config.image_dir, **columns)
        elif config.data.startswith("tfds:"):
            val = load_captions(
                config.data,
                split=name,
                image_column=config.image_column,
                caption_column=config.caption_column,
            )
        elif os.path.isdir(config.data):
            val = load_captions(
                config.data, split=name, image_dir=config.image_dir, on_bad_rows=config.on_bad_rows
            )
        else:
            raise ConfigError(
                f"config field 'validation_data': {name!r} is not a .csv or .npz file, and a "
                f"split name needs a Flickr8k folder as --data; received: {config.data!r}"
            )
        if (val.features is None) != (data.features is None):
            raise ConfigError(
                f"config field 'validation_data': {name} holds "
                f"{'images' if val.features is None else 'feature vectors'}, the training data "
                f"{'images' if data.features is None else 'feature vectors'}"
            )
        if val.images is not None:
            for image_id, encoded in zip(val.ids, val.images.read_many(val.ids)):
                check_image(encoded, f"{val.images.description}: {image_id}", decode=True)
        return val

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
        """Frozen-encoder feature grids of the training and validation images (cached)."""
        results, encoding = [], {}
        for name, part in (("train", train), ("validation", val)):
            features, stats = cached_image_features(
                image_encoder,
                part.images.read_many,
                part.ids,
                image_size=config.image_size,
                source=part.images.description,
                cache_dir=config.feature_cache or None,
                verbose=2,
            )
            results.append(features)
            encoding[name] = {"images": len(part), **stats}
        return results[0], results[1], encoding

    # --- fine-tuning ---------------------------------------------------------------------

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
        end to end (``encoder=cnn`` or ``fine_tune_blocks``), it trains on
        with the decoder unless ``freeze="encoder"``. The vocabulary is fixed:
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

    # --- model ---------------------------------------------------------------------------

    def build_model(self, config: CaptioningConfig, prepared: Prepared) -> keras.Model:
        grid_shape = prepared.info.grid_shape
        decoder = build_captioner(config, prepared.info.tokenizer.vocabulary_size, grid_shape)
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

    # --- metrics -------------------------------------------------------------------------

    def evaluate(self, model, prepared: Prepared, config: CaptioningConfig) -> dict:
        """Validation metrics of the best weights.

        ``val_nll`` (nats per caption token, no label smoothing), ``val_perplexity``
        and ``val_token_accuracy`` under teacher forcing; corpus ``val_bleu_1`` ..
        ``val_bleu_4`` and ``val_cider_d`` of the validation images' generated
        captions against all their references.
        """
        inputs = prepared.info.validation_inputs  # encoded images, or feature grids
        shape = None if isinstance(inputs, list) else tuple(np.shape(inputs)[1:])
        generator = make_generator(model, prepared.info, config, feature_shape=shape)
        val = prepared.info.validation_data
        forced, decoding, captions = self.generation_metrics(
            model, prepared.validation, generator, inputs, config, batch_size=32
        )
        scores = caption_scores(captions, val.captions)
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
        and ``score`` out; the ``score`` signature gives caption log-likelihoods."""
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
        )

    # --- serving side --------------------------------------------------------------------

    def predict(self, version_dir: str, metadata: dict, inputs: list[str]) -> list[dict]:
        """Captions of image files (or, for feature models, ``.npy`` vectors) via the export."""
        if metadata.get("inputs") == "features":
            shape = tuple(metadata.get("feature_shape") or ())
            values = np.stack([read_feature_file(path, shape) for path in inputs])
            captions, scores, _, _ = self.run_export(version_dir, "features", values)
        else:
            images = [read_image_file(path) for path in inputs]
            captions, scores, _, _ = self.run_export(version_dir, "image_bytes", images)
        return [
            {"image": path, "caption": caption, "score": score}
            for path, caption, score in zip(inputs, captions, scores)
        ]

    def evaluate_export(
        self,
        version_dir: str,
        metadata: dict,
        *,
        data: str | None = None,
        split: str = "dev",
        image_dir: str | None = None,
        captions_file: str | None = None,
        max_examples: int | None = None,
        format: str | None = None,
        image_column: str | None = None,
        caption_column: str | None = None,
        on_bad_rows: str = "error",
    ) -> dict:
        """Corpus BLEU-1..4 (and CIDEr-D) of the export's captions of ``split`` against all references.

        ``format``, the columns and ``on_bad_rows`` are :func:`load_captions`'s; with
        ``on_bad_rows="skip"`` the report has ``skipped_bad_rows``.
        """
        refs = load_captions(
            data,
            split=split,
            image_dir=image_dir,
            captions_file=captions_file,
            max_examples=max_examples,
            format=format,
            image_column=image_column,
            caption_column=caption_column,
            on_bad_rows=on_bad_rows,
        )
        if metadata.get("inputs") == "features":
            if refs.features is None:
                raise DataError(f"{data}: this model takes feature vectors; expected a .npz")
            expected = list(metadata["feature_shape"])
            if list(refs.features.shape[1:]) != expected:
                raise DataError(
                    f"{data}: vectors of shape {tuple(refs.features.shape[1:])}; this model "
                    f"takes {tuple(expected)}"
                )
            values = refs.features.astype(np.float32)
            captions, _, seconds, _ = self.run_export(version_dir, "features", values)
        else:
            if refs.images is None:
                raise DataError(
                    f"{data}: this model takes images; expected a Flickr8k folder or a captions file"
                )
            encoded = refs.images.read_many(refs.ids)
            for image_id, blob in zip(refs.ids, encoded):
                check_image(blob, f"{refs.images.description}: {image_id}", decode=True)
            captions, _, seconds, _ = self.run_export(version_dir, "image_bytes", encoded)
        report = caption_scores(captions, refs.captions)
        report.update(
            {
                "data": refs.source,
                "split": split if data and os.path.isdir(data) else None,
                "decoding": metadata.get("decoding"),
                "images_per_second": round(len(refs) / seconds, 2),
                "examples": [
                    {"image": refs.ids[i], "caption": captions[i], "references": refs.captions[i]}
                    for i in range(min(3, len(refs)))
                ],
            }
        )
        if refs.skipped_bad_rows is not None:
            report["skipped_bad_rows"] = refs.skipped_bad_rows
        return report

    def format_prediction(self, result: dict) -> str:
        return f"{result['caption']}\t{result['image']}"

    def format_report(self, report: dict) -> str:
        bleu = "  ".join(f"BLEU-{n} {report[f'bleu_{n}']:.2f}" for n in range(1, 5))
        lines = [
            f"split     {report['split'] or '-'} ({report['images']} images, "
            f"{report['references_per_image'][0]}-{report['references_per_image'][1]} "
            "references each)",
            f"{bleu}   {report['bleu_signature']}",
        ]
        if "cider_d" in report:
            lines.append(f"CIDEr-D   {report['cider_d']:.3f}")
        decoding = decoding_line(report, "images_per_second", "images")
        if decoding:
            lines.append(decoding)
        for example in report.get("examples", []):
            lines.append(f"  {example['image']}: {example['caption']}")
        return "\n".join(lines)

    def plot_captions(
        self,
        version_dir: str,
        metadata: dict,
        paths: list[str],
        output: str,
        attention: bool = False,
    ) -> dict:
        """Caption images with the export's Keras models and draw them as a PNG grid.

        With ``attention`` (attention and transformer models), each image gets
        a row of panels: the attention map over the feature grid for every
        generated word (Transformer: the last block's, averaged over heads).

        Returns:
            ``{"captions": [{"image", "caption", "score"}], "output"}``.

        Raises:
            UserError: for a file that is not an image, a feature-vector model,
            or ``attention`` with an lstm model; ExportError if the export lacks
            its Keras models.
        """
        from seqtasks.plots import caption_grid

        if metadata.get("inputs") == "features":
            raise UserError(
                f"{version_dir}: plot-captions needs an image model; this one takes features"
            )
        if attention and metadata.get("model") == "lstm":
            raise UserError("--attention needs an attention or transformer model; this is lstm")
        encoded = [read_image_file(path) for path in paths]
        generator = load_generator(version_dir, metadata)
        images = decode_images(tf.constant(encoded), generator.source.image_size)
        maps = None
        if attention:
            _, ids, scores, maps = generator.attention(tf.constant(encoded))
        else:
            ids, scores = (np.asarray(t) for t in generator.generate(tf.constant(encoded)))
        captions = [c.decode("utf-8") for c in generator.tokenizer.detokenize(ids).numpy()]
        if maps is not None:
            from seqtasks.models.image_encoders import grid_shape

            rows, columns = grid_shape(generator.source.image_encoder)
            vocabulary = generator.tokenizer.vocabulary
            maps = [
                ([vocabulary[t] for t in tokens], weights.reshape(len(tokens), rows, columns))
                for tokens, weights in maps
            ]
        pixels = [np.asarray(image).clip(0, 255).astype(np.uint8) for image in images]
        labels = [f"{c}\n({os.path.basename(p)})" for c, p in zip(captions, paths)]
        caption_grid(pixels, labels, output, attention=maps)
        return {
            "captions": [
                {"image": p, "caption": c, "score": float(s)}
                for p, c, s in zip(paths, captions, np.asarray(scores))
            ],
            "output": output,
        }


# --- building blocks ---------------------------------------------------------------------


def caption_texts(data: CaptionData) -> list[str]:
    """Every caption of ``data``, normalised as training sees it (lower case, no punctuation)."""
    return [normalize_caption(c) for captions in data.captions for c in captions]


def as_grid(features: np.ndarray) -> np.ndarray:
    """Feature vectors ``(N, dim)`` as one-position grids ``(N, 1, dim)``; grids unchanged."""
    features = np.asarray(features, np.float32)
    return features[:, None, :] if features.ndim == 2 else features


def caption_generator(
    decoder, tokenizer, options, max_length: int, image_encoder, image_size: int,
    feature_dtype: str | None, feature_shape=None,
) -> Generator:  # fmt: skip
    """A :class:`~seqtasks.generation.Generator` from images (encoded bytes, through
    ``image_encoder``) or, without an image encoder, from feature vectors or grids
    (``feature_shape`` per example) to captions (output ``caption``)."""
    if image_encoder is not None:
        source = ImageSource(image_encoder, image_size, feature_dtype)
    else:
        source = FeatureSource(feature_shape)
    return Generator(decoder, tokenizer, options, max_length, source, output_name="caption")


def make_generator(
    model, info: CaptioningInfo, config: CaptioningConfig, feature_shape=None
) -> Generator:
    """The caption generator of a trained model, decoding as ``config`` says: from
    encoded images (its image encoder's input), or with ``feature_shape`` (one
    example's, e.g. ``(P, C)``) from feature grids such as the cached validation
    features, bypassing the image encoder."""
    decoder = model.decoder if isinstance(model, ImageCaptioner) else model
    return caption_generator(
        decoder,
        info.tokenizer,
        options_from_config(config),
        config.sequence_length,
        image_encoder=None if feature_shape else info.image_encoder,
        image_size=config.image_size,
        feature_dtype=feature_dtype(info, config),
        feature_shape=feature_shape or info.feature_shape,
    )


def feature_dtype(info: CaptioningInfo, config: CaptioningConfig) -> str | None:
    """``"float16"`` if the decoder trained on cached (float16) features of a frozen encoder."""
    cached = info.image_encoder is not None and not config.end_to_end
    return "float16" if cached else None


def load_generator(version_dir: str, metadata: dict) -> Generator:
    """The caption generator of an export's Keras models and vocabulary."""
    takes_features = metadata.get("inputs") == "features"
    needed = [DECODER_FILE, VOCABULARY_FILE] + ([] if takes_features else [IMAGE_ENCODER_FILE])
    decoder_file, vocabulary_file, *encoder_file = extra_files(version_dir, needed, "plot")
    decoder = load_keras_model(decoder_file)
    image_encoder = load_keras_model(encoder_file[0]) if encoder_file else None
    preprocessing = metadata.get("preprocessing", {})
    length = int(preprocessing.get("sequence_length", 32))
    tokenizer = SubwordTokenizer(vocabulary_file, length, lowercase=True)
    return caption_generator(
        decoder,
        tokenizer,
        stored_options(metadata.get("decoding")),
        length,
        image_encoder=image_encoder,
        image_size=int(preprocessing.get("image_size", 160)),
        feature_dtype=preprocessing.get("feature_dtype"),
        feature_shape=metadata.get("feature_shape"),
    )
