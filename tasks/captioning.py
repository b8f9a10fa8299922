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
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from seqtasks import export as exporting
from seqtasks.caption_metrics import caption_scores, normalize_caption
from seqtasks.config import TrainConfig, option
from seqtasks.data.captions import RECORD_SUFFIXES, CaptionData, load_captions
from seqtasks.data.pipeline import split_indices
from seqtasks.data.records import FORMATS, ON_BAD_ROWS
from seqtasks.data.teacher_forcing import caption_batches
from seqtasks.decoding import (
    DecodingConfig,
    options_from_config,
    stored_options,
)
from seqtasks.errors import ConfigError, DataError, ExportError, UserError
from seqtasks.generation import FeatureSource, Generator, ImageSource
from seqtasks.images import cached_image_features, check_image, decode_images
from seqtasks.inference import call_in_batches, load_keras_model, load_serving_fn
from seqtasks.metrics import teacher_forced_metrics
from seqtasks.models.captioning import CAPTION_MODELS, ImageCaptioner, build_captioner
from seqtasks.models.image_encoders import (
    IMAGE_ENCODERS,
    build_image_encoder,
    mobilenet_v2_weights,
)
from seqtasks.models.seq2seq import ATTENTION_SCORES, RNN_CELLS
from seqtasks.models.seq2seq import freeze as freeze_layers
from seqtasks.recipe import FinetunePlan, GenerationRecipe, Prepared
from seqtasks.subword import (
    DEFAULT_MIN_FREQUENCY,
    SubwordTokenizer,
    learn_vocabulary,
    subword_coverage,
)
from seqtasks.text import END_ID, write_vocabulary
from seqtasks.versions import package_versions

log = logging.getLogger(__name__)

# What an export keeps in assets.extra/ besides metadata.json (plots, fine-tuning).
VOCABULARY_FILE = "vocabulary.txt"
DECODER_FILE = "decoder.keras"
IMAGE_ENCODER_FILE = "image_encoder.keras"

# finetune warns when more of the new captions' words than this are not whole vocabulary
# tokens (split into pieces, or [UNK]).
OOV_WARNING = 0.2


# --- config ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CaptioningConfig(DecodingConfig, TrainConfig):
    """Defaults of the captioning recipe (every field can be set with ``--set key=value``)."""

    data: str = option(
        "",
        "Training data: a Flickr8k folder, a .csv/.tsv/.jsonl/.parquet of image and caption "
        "rows, or a .npz of vectors.",
    )
    max_examples: int | None = option(
        None, "Use only the first N images (quick runs); None uses all.", min=1
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
    split: str = option("train", "Flickr8k split to train on (train, dev, all).")
    validation_data: str | None = option(
        None,
        "Validation data: a Flickr8k split of --data (e.g. dev) or another records "
        "(.csv/.tsv/.jsonl/.parquet) or .npz file; "
        "None carves validation_split of the training images (by image, so no image is on "
        "both sides).",
    )
    image_dir: str | None = option(
        None, "Image folder or .tar (default: the Flickr8k folder's one, or the CSV's folder)."
    )
    captions_file: str | None = option(
        None, "Feature data (.npz): the image,caption CSV keyed by vector id (default <stem>.csv)."
    )
    format: str = option(
        "auto",
        "Format of a captions file (CSV/TSV/JSONL/Parquet); auto uses the extension.",
        choices=("auto", *FORMATS),
    )
    image_column: str | None = option(
        None, "Image (or vector id) field of CSV/TSV/JSONL/Parquet captions (default: image)."
    )
    caption_column: str | None = option(
        None, "Caption field of CSV/TSV/JSONL/Parquet captions (default: caption)."
    )
    on_bad_rows: str = option(
        "error",
        "Malformed caption rows (wrong number of fields, empty image or caption, bad UTF-8, "
        "invalid JSON, a missing image file): error stops at the first; skip drops them "
        "with a warning (count, first line numbers) and records the count.",
        choices=ON_BAD_ROWS,
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
    vocabulary_size: int = option(
        5000, "Upper bound on WordPiece tokens (4 reserved included).", min=8
    )
    min_frequency: int = option(
        DEFAULT_MIN_FREQUENCY,
        "WordPiece: a piece must occur this often to be learned (10, keras-hub's; "
        "lower it, e.g. to 2, for a few thousand sentences, or rare words become letters).",
        min=1,
    )
    sequence_length: int = option(
        32,
        "Longest caption in subword tokens ([START]/[END] included); longer training "
        "captions are dropped, generated ones stop there.",
        min=4,
    )
    embedding_dim: int = option(256, "RNN models: word embedding size.", min=1)
    hidden_dim: int = option(512, "RNN decoder units; Transformer d_model.", min=1)
    cell: str = option("lstm", "RNN models: recurrent cell.", choices=RNN_CELLS)
    attention: str = option(
        "additive",
        "Attention score (model=attention): additive (Bahdanau/Xu) or multiplicative (Luong).",
        choices=ATTENTION_SCORES,
    )
    intermediate_dim: int = option(1024, "Transformer feed-forward width.", min=1)
    num_heads: int = option(8, "Transformer attention heads.", min=1)
    num_layers: int = option(2, "Transformer decoder blocks.", min=1)
    num_encoder_layers: int = option(0, "Transformer encoder blocks over the feature grid.", min=0)
    dropout: float = option(0.3, "Dropout rate.", min=0.0, max=0.9)
    label_smoothing: float = option(0.1, "Label smoothing of the training loss.", min=0.0, max=0.9)
    warmup_steps: int = option(
        1000, "Transformer: optimizer steps of linear learning-rate warm-up.", min=1
    )
    beam_size: int = option(3, "Beam size (baked into the export).", min=1, max=64)

    def check(self) -> None:
        """Transformer width divisible by heads; fine-tuning only for MobileNetV2."""
        if self.model == "transformer" and self.hidden_dim % self.num_heads:
            raise ConfigError(
                f"config fields 'hidden_dim' and 'num_heads': the Transformer needs hidden_dim "
                f"divisible by num_heads; received: {self.hidden_dim} and {self.num_heads}"
            )
        if self.fine_tune_blocks and self.encoder != "mobilenet_v2":
            raise ConfigError(
                "config field 'fine_tune_blocks' applies to encoder=mobilenet_v2; "
                f"the {self.encoder} encoder is always trained"
            )

    @property
    def end_to_end(self) -> bool:
        """Whether the image encoder trains with the decoder (no feature cache then)."""
        return self.encoder == "cnn" or self.fine_tune_blocks > 0


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
    data_fields = (
        *GenerationRecipe.data_fields,
        "format",
        "split",
        "validation_data",
        "image_dir",
        "captions_file",
        "image_column",
        "caption_column",
        "on_bad_rows",
    )
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
        info = {"tokenizer": tokenizer, "validation_data": val}
        encoding: dict = {}
        if data.features is not None:
            train_inputs, val_inputs = as_grid(train.features), as_grid(val.features)
            info["image_encoder"] = None
        else:
            if image_encoder is None:
                image_encoder = build_image_encoder(
                    config.encoder,
                    config.image_size,
                    config.encoder_weights,
                    config.fine_tune_blocks,
                )
            info["image_encoder"] = image_encoder
            if config.end_to_end:
                train_inputs = train.images.read_many(train.ids)
                val_inputs = val.images.read_many(val.ids)
            else:
                train_inputs, val_inputs, encoding = self._cached_features(
                    config, image_encoder, data, train, val
                )
        info["validation_inputs"] = val_inputs
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
            else list(info["image_encoder"].output.shape[1:])
        )
        info["grid_shape"] = grid_shape  # (positions, channels) the decoder attends over
        # What the export takes: feature vectors (dim,) as given, or feature grids.
        feature_shape = list(data.features.shape[1:]) if data.features is not None else grid_shape
        info["feature_shape"] = feature_shape
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
        path = os.path.join(run_dir, "vocabulary.txt")
        if not os.path.isfile(path):
            texts = [normalize_caption(c) for captions in train.captions for c in captions]
            tokens = learn_vocabulary(
                texts,
                config.vocabulary_size,
                lowercase=True,
                min_frequency=config.min_frequency,
            )
            write_vocabulary(tokens, path)
        return SubwordTokenizer(path, config.sequence_length, lowercase=True)

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
        warning above :data:`OOV_WARNING`). ``freeze``: see
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
        extra = os.path.join(version_dir, "assets.extra")
        needed = [DECODER_FILE, VOCABULARY_FILE] + ([] if takes_features else [IMAGE_ENCODER_FILE])
        for name in needed:
            if not os.path.isfile(os.path.join(extra, name)):
                raise ExportError(
                    f"{version_dir}: cannot fine-tune: the export lacks {os.path.join(extra, name)}"
                )
        vocabulary_file = os.path.join(extra, VOCABULARY_FILE)
        tokenizer = SubwordTokenizer(vocabulary_file, config.sequence_length, lowercase=True)
        coverage = subword_coverage(tokenizer, caption_texts(data))
        original = (metadata.get("subwords") or {}).get("captions") or {}
        coverage["training_pieces_per_word"] = original.get("pieces_per_word")
        message = (
            "%.1f%% of the new captions' %d words are not whole vocabulary tokens (%.1f%% of "
            "their subword tokens are [UNK]); %.2f pieces per word"
        )
        args = [
            100 * coverage["split_words"],
            coverage["words"],
            100 * coverage["share"],
            coverage["pieces_per_word"],
        ]
        if coverage["training_pieces_per_word"]:
            message += " (training data: %.2f)"
            args.append(coverage["training_pieces_per_word"])
        if coverage["split_words"] > OOV_WARNING:
            log.warning(
                message + " (above %d%%: the vocabulary fits these captions poorly; consider "
                "training from scratch with `train`)",
                *args,
                round(100 * OOV_WARNING),
            )
        else:
            log.info(message, *args)

        decoder = load_keras_model(os.path.join(extra, DECODER_FILE))
        image_encoder = (
            None if takes_features else load_keras_model(os.path.join(extra, IMAGE_ENCODER_FILE))
        )
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

        def prepare(run_dir: str) -> Prepared:
            # prepare() reuses a vocabulary found in the run dir instead of learning one.
            shutil.copyfile(vocabulary_file, os.path.join(run_dir, VOCABULARY_FILE))
            prepared = self.prepare(config, data, run_dir, image_encoder=image_encoder)
            prepared.metadata.update({"finetuned_from": facts["finetuned_from"], "finetune": facts})
            return prepared

        return FinetunePlan(model=model, prepare=prepare, metadata=facts)

    # --- model ---------------------------------------------------------------------------

    def build_model(self, config: CaptioningConfig, prepared: Prepared) -> keras.Model:
        grid_shape = prepared.info["grid_shape"]
        decoder = build_captioner(config, prepared.info["tokenizer"].vocabulary_size, grid_shape)
        tokens = np.full((1, 2), 2, np.int32)
        decoder(
            {
                "image_features": np.zeros((1, *grid_shape), np.float32),
                "decoder_token_ids": tokens,
            }
        )
        if not config.end_to_end or prepared.info["image_encoder"] is None:
            return decoder
        model = ImageCaptioner(prepared.info["image_encoder"], decoder)
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
        forced = teacher_forced_metrics(model, prepared.validation)
        inputs = prepared.info["validation_inputs"]  # encoded images, or feature grids
        shape = None if isinstance(inputs, list) else tuple(np.shape(inputs)[1:])
        generator = make_generator(model, prepared, config, feature_shape=shape)
        val: CaptionData = prepared.info["validation_data"]
        start = time.perf_counter()
        captions, _ = generator.generate_all(inputs, batch_size=32)
        seconds = time.perf_counter() - start
        scores = caption_scores(captions, val.captions)
        return {
            "val_nll": forced["nll"],
            "val_perplexity": forced["perplexity"],
            "val_token_accuracy": forced["token_accuracy"],
            **{
                f"val_{k}": v
                for k, v in scores.items()
                if k.startswith(("bleu_", "cider")) and k != "bleu_signature"
            },
            "bleu_signature": scores["bleu_signature"],
            "decoding": dataclasses.asdict(options_from_config(config)),
            "decode_seconds": round(seconds, 2),
            "examples": [
                {"image": val.ids[i], "caption": captions[i], "references": val.captions[i]}
                for i in range(min(3, len(val)))
            ],
        }

    # --- export --------------------------------------------------------------------------

    def export(self, model, prepared: Prepared, config: CaptioningConfig, metadata: dict) -> str:
        generator = make_generator(model, prepared, config)
        feature_shape = prepared.info["feature_shape"]
        image_encoder = getattr(generator.source, "image_encoder", None)
        spec = generator.source.spec()
        if image_encoder is not None:
            inputs = {"image_bytes": "tf.string [None]: encoded JPEG, PNG, GIF or BMP images"}
        else:
            inputs = {"features": f"tf.float32 [None, {', '.join(map(str, feature_shape))}]"}
        extra_files = {
            DECODER_FILE: generator.model.save,
            VOCABULARY_FILE: prepared.info["tokenizer"].vocabulary_file,
        }
        if image_encoder is not None:
            extra_files[IMAGE_ENCODER_FILE] = image_encoder.save
        return exporting.write_version(
            config.export_dir,
            lambda path: exporting.save_serving_archive(
                path, [generator], generator.serving_function, [spec]
            ),
            metadata={
                "task": self.name,
                "task_type": self.task_type,
                "model": config.model,
                "config": config.to_dict(),
                "decoding": dataclasses.asdict(options_from_config(config)),
                "signature": {
                    "inputs": inputs,
                    "outputs": {
                        "caption": "tf.string [None]: the generated caption (lower case, "
                        "no punctuation)",
                        "score": "tf.float32 [None]: log P(caption|image) / its length in "
                        "tokens ([END] included)",
                    },
                },
                "requires": ["tensorflow", "tensorflow_text"],
                "preprocessing": {
                    "image_size": config.image_size,
                    "resize": "bilinear, antialiased, aspect ratio not kept",
                    "encoder": config.encoder if image_encoder is not None else None,
                    "feature_dtype": getattr(generator.source, "feature_dtype", None),
                    "tokenizer": "wordpiece",
                    "sequence_length": config.sequence_length,
                    "caption_normalization": "lower case, punctuation removed",
                },
                "versions": package_versions(),
                **prepared.metadata,
                **metadata,
            },
            extra_files=extra_files,
        )

    # --- serving side --------------------------------------------------------------------

    def predict(self, version_dir: str, metadata: dict, inputs: list[str]) -> list[dict]:
        """Captions of image files (or, for feature models, ``.npy`` vectors) via the export."""
        import tensorflow_text  # noqa: F401  (registers the WordPiece ops)

        if metadata.get("inputs") == "features":
            arrays = [_read_vector(path, metadata) for path in inputs]
            outputs = call_in_batches(
                load_serving_fn(version_dir), "features", np.stack(arrays).astype(np.float32), 32
            )
        else:
            encoded = [_read_image(path) for path in inputs]
            outputs = call_in_batches(load_serving_fn(version_dir), "image_bytes", encoded, 32)
        return [
            {
                "image": path,
                "caption": outputs["caption"][i].decode("utf-8"),
                "score": float(outputs["score"][i]),
            }
            for i, path in enumerate(inputs)
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
        import tensorflow_text  # noqa: F401

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
        loaded = load_serving_fn(version_dir)
        start = time.perf_counter()
        if metadata.get("inputs") == "features":
            if refs.features is None:
                raise DataError(f"{data}: this model takes feature vectors; expected a .npz")
            expected = list(metadata["feature_shape"])
            if list(refs.features.shape[1:]) != expected:
                raise DataError(
                    f"{data}: vectors of shape {tuple(refs.features.shape[1:])}; this model "
                    f"takes {tuple(expected)}"
                )
            outputs = call_in_batches(loaded, "features", refs.features.astype(np.float32), 32)
        else:
            if refs.images is None:
                raise DataError(
                    f"{data}: this model takes images; expected a Flickr8k folder or a captions file"
                )
            encoded = refs.images.read_many(refs.ids)
            for image_id, blob in zip(refs.ids, encoded):
                check_image(blob, f"{refs.images.description}: {image_id}", decode=True)
            outputs = call_in_batches(loaded, "image_bytes", encoded, 32)
        seconds = time.perf_counter() - start
        captions = [c.decode("utf-8") for c in outputs["caption"]]
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
        decoding = report.get("decoding") or {}
        if decoding:
            lines.append(
                f"decoding  {decoding.get('strategy')} (beam {decoding.get('beam_size')}, "
                f"length penalty {decoding.get('length_penalty')}), "
                f"{report['images_per_second']} images/s"
            )
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
        extra = os.path.join(version_dir, "assets.extra")
        for name in (DECODER_FILE, IMAGE_ENCODER_FILE, VOCABULARY_FILE):
            if not os.path.isfile(os.path.join(extra, name)):
                raise ExportError(f"{version_dir}: the export has no assets.extra/{name}")
        encoded = [_read_image(path) for path in paths]
        generator = load_generator(version_dir, metadata)
        images = decode_images(tf.constant(encoded), generator.source.image_size)
        features = generator.source.encode(tf.constant(encoded))
        ids, scores = generator.decode(features)
        captions = [c.decode("utf-8") for c in generator.tokenizer.detokenize(ids).numpy()]
        maps = None
        if attention:
            from seqtasks.models.image_encoders import grid_shape

            rows, columns = grid_shape(generator.source.image_encoder)
            maps = []
            ids = np.asarray(ids)
            for i in range(len(paths)):
                generated = list(ids[i, 1:])
                if END_ID in generated:
                    generated = generated[: generated.index(END_ID) + 1]
                weights = generator.model.cross_attention(
                    features[i : i + 1], ids[i : i + 1, : len(generated)].astype(np.int32)
                )
                weights = np.asarray(weights)[0].reshape(len(generated), rows, columns)
                words = [generator.tokenizer.vocabulary[t] for t in generated]
                maps.append((words, weights))
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
    model, prepared: Prepared, config: CaptioningConfig, feature_shape=None
) -> Generator:
    """The caption generator of a trained model, decoding as ``config`` says: from
    encoded images (its image encoder's input), or with ``feature_shape`` (one
    example's, e.g. ``(P, C)``) from feature grids such as the cached validation
    features, bypassing the image encoder."""
    decoder = model.decoder if isinstance(model, ImageCaptioner) else model
    return caption_generator(
        decoder,
        prepared.info["tokenizer"],
        options_from_config(config),
        config.sequence_length,
        image_encoder=None if feature_shape else prepared.info["image_encoder"],
        image_size=config.image_size,
        feature_dtype=feature_dtype(prepared, config),
        feature_shape=feature_shape or prepared.info["feature_shape"],
    )


def feature_dtype(prepared: Prepared, config: CaptioningConfig) -> str | None:
    """``"float16"`` if the decoder trained on cached (float16) features of a frozen encoder."""
    cached = prepared.info["image_encoder"] is not None and not config.end_to_end
    return "float16" if cached else None


def load_generator(version_dir: str, metadata: dict) -> Generator:
    """The caption generator of an export's Keras models and vocabulary."""
    extra = os.path.join(version_dir, "assets.extra")
    decoder = keras.saving.load_model(os.path.join(extra, DECODER_FILE), compile=False)
    encoder_path = os.path.join(extra, IMAGE_ENCODER_FILE)
    image_encoder = (
        keras.saving.load_model(encoder_path, compile=False)
        if os.path.isfile(encoder_path)
        else None
    )
    preprocessing = metadata.get("preprocessing", {})
    length = int(preprocessing.get("sequence_length", 32))
    tokenizer = SubwordTokenizer(os.path.join(extra, VOCABULARY_FILE), length, lowercase=True)
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


def _read_image(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None
    check_image(data, path, decode=True)
    return data


def _read_vector(path: str, metadata: dict) -> np.ndarray:
    expected = tuple(metadata.get("feature_shape") or ())
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a .npy array ({e})") from None
    array = np.asarray(array, np.float32)
    if array.shape != expected:
        raise UserError(
            f"{path}: expected a feature array of shape {expected}; found {array.shape}"
        )
    return array
