"""The serving side of the captioning recipe: predict, evaluate and plot an export, and the
caption generators that the export and the plots decode with."""

from __future__ import annotations

import logging
import os

import numpy as np
import tensorflow as tf

from seqtasks.caption_metrics import caption_scores
from seqtasks.data.captions import load_captions
from seqtasks.decoding import options_from_config, stored_options
from seqtasks.diagnostics import empty_outputs, low_bleu, warn_if_undertrained
from seqtasks.errors import DataError, UserError
from seqtasks.export import extra_files
from seqtasks.generation import FeatureSource, Generator, ImageSource
from seqtasks.generation_recipe import GenerationRecipe, decoding_line
from seqtasks.images import (
    check_image,
    decode_images,
    read_feature_file,
    read_image_file,
)
from seqtasks.inference import load_keras_model
from seqtasks.models.captioning import ImageCaptioner
from seqtasks.subword import SubwordTokenizer
from tasks.captioning.config import CaptioningConfig, CaptioningInfo
from tasks.registry import ENTRIES

_ENTRY = ENTRIES["captioning"]

# What an export keeps in assets.extra/ besides metadata.json (plots, fine-tuning).
VOCABULARY_FILE = "vocabulary.txt"
DECODER_FILE = "decoder.keras"
IMAGE_ENCODER_FILE = "image_encoder.keras"

log = logging.getLogger("tasks.captioning")


class CaptioningServing(GenerationRecipe):
    """The serving-side steps of :class:`~tasks.captioning.recipe.CaptioningRecipe`."""

    output_name = "caption"
    evaluate_options = _ENTRY.evaluate_options

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
        ``on_bad_rows="skip"`` the report has ``skipped_bad_rows``. Mostly empty captions
        or BLEU-4 below 1 log an "undertrained" warning.
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
        warn_if_undertrained(log, empty_outputs(captions), low_bleu(report["bleu_4"], "BLEU-4"))
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
            positions = maps[0][1].shape[-1] if maps else rows * columns
            if positions != rows * columns:  # the decoder's backbone shrank the grid
                rows = columns = int(round(positions**0.5))
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


def bleu_4_callback(prepared, config: CaptioningConfig):
    """The callback that logs ``val_bleu_4`` after every epoch: the validation images'
    captions decoded as the export decodes, corpus BLEU-4 against all their references
    (what the recipe's ``evaluate`` reports); one generator per model, traced once."""
    from seqtasks.generation_recipe import decoded_score_callback

    inputs = prepared.info.validation_inputs
    shape = None if isinstance(inputs, list) else tuple(np.shape(inputs)[1:])
    generators = {}

    def bleu_4(trained) -> float:
        if id(trained) not in generators:
            generators[id(trained)] = make_generator(
                trained, prepared.info, config, feature_shape=shape
            )
        captions, _ = generators[id(trained)].generate_all(inputs, batch_size=32)
        return caption_scores(captions, prepared.info.validation_data.captions)["bleu_4"]

    return decoded_score_callback("val_bleu_4", bleu_4)
