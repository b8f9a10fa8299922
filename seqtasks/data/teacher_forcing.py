"""Teacher-forcing batches of the generation recipes: ``({encoder input, "decoder_token_ids":
target[:, :-1]}, target[:, 1:])``, right-padded with 0 (``[PAD]``), shuffled by epoch.

:func:`pair_batches` (translation: source ids in, length-bucketed) and
:func:`caption_batches` (captioning: image features or encoded images in) share
the last step, :func:`teacher_forcing`. The ``config`` they take has the fields
``sequence_length``, ``batch_size`` and ``seed`` (and ``image_size`` for encoded
images).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from seqtasks.caption_metrics import normalize_caption
from seqtasks.data.captions import CaptionData
from seqtasks.data.parallel import ParallelData
from seqtasks.data.pipeline import bucket_boundaries, shuffle_each_epoch
from seqtasks.errors import DataError
from seqtasks.images import decode_image
from seqtasks.subword import SubwordTokenizer


def teacher_forcing(ds: tf.data.Dataset, key: str) -> tf.data.Dataset:
    """Batches ``(x, target)`` -> ``({key: x, "decoder_token_ids": target[:, :-1]},
    target[:, 1:])``, prefetched: the decoder reads the target shifted right by one
    and learns to predict each next token (teacher forcing)."""
    ds = ds.map(
        lambda x, t: ({key: x, "decoder_token_ids": t[:, :-1]}, t[:, 1:]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def pair_batches(
    pairs: ParallelData,
    source_tokenizer: SubwordTokenizer,
    target_tokenizer: SubwordTokenizer,
    config,
    *,
    shuffle: bool,
) -> tuple[tf.data.Dataset, int]:
    """Teacher-forcing batches, length-bucketed; pairs over ``sequence_length`` are dropped.

    Returns:
        ``(dataset, dropped)``: batches ``({"encoder_token_ids": int32 (B, S),
        "decoder_token_ids": int32 (B, T)}, int32 (B, T))`` right-padded with 0,
        and the number of pairs dropped for length.
    """
    source = source_tokenizer.untruncated(tf.constant(pairs.sources, tf.string))  # ragged
    target = target_tokenizer.untruncated(tf.constant(pairs.targets, tf.string))
    source_len = source.row_lengths().numpy()
    target_len = target.row_lengths().numpy() + 2  # [START] ... [END]
    keep = (source_len <= config.sequence_length) & (target_len <= config.sequence_length)
    dropped = int((~keep).sum())
    keep_idx = np.flatnonzero(keep)
    source = tf.gather(source, keep_idx)
    target = target_tokenizer.with_boundaries(
        tf.gather(tf.constant(pairs.targets, tf.string), keep_idx)
    )
    ds = tf.data.Dataset.from_tensor_slices(
        (source.to_tensor(), source.row_lengths(), target.to_tensor(), target.row_lengths())
    )
    ds = ds.map(lambda s, s_len, t, t_len: (s[:s_len], t[:t_len])).cache()
    if shuffle:
        ds = shuffle_each_epoch(ds, len(keep_idx), config.seed)
    sizes = bucket_boundaries(config.sequence_length)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda s, t: tf.maximum(tf.shape(s)[0], tf.shape(t)[0]),
        bucket_boundaries=[s + 1 for s in sizes],
        bucket_batch_sizes=[config.batch_size] * (len(sizes) + 1),
        pad_to_bucket_boundary=True,
    )
    return teacher_forcing(ds, "encoder_token_ids"), dropped


_MIRRORED_WORDS = {"left": "right", "right": "left"}


def mirror_caption(caption: str) -> str:
    """A normalised caption (:func:`~seqtasks.caption_metrics.normalize_caption`) of the
    mirror image: the words ``left`` and ``right`` swapped, nothing else changed.

    >>> mirror_caption("a dog runs to the left of a man on the right")
    'a dog runs to the right of a man on the left'
    """
    return " ".join(_MIRRORED_WORDS.get(word, word) for word in caption.split(" "))


def caption_batches(
    data: CaptionData,
    inputs,
    tokenizer: SubwordTokenizer,
    config,
    *,
    shuffle: bool,
    mirrored=None,
) -> tuple[tf.data.Dataset, int]:
    """Teacher-forcing batches, one example per (image, caption) pair, and with
    ``mirrored`` one more per (mirror image, mirrored caption) pair.

    Args:
        data: images and their captions.
        inputs: float ``(N, P, C)`` feature grids aligned with ``data.ids``, or a
            list of N encoded images (decoded and resized here, in tf.data).
        tokenizer: caption tokenizer (captions are normalised first).
        mirrored: None (default), or each image flipped left to right as a second
            example of each of its captions, with ``left`` and ``right`` swapped
            (:func:`mirror_caption`): float ``(N, P, C)`` feature grids of the mirror
            images when ``inputs`` are grids, True when they are encoded images
            (flipped here). The examples per epoch double.

    Returns:
        ``(dataset, dropped)``: batches ``({"image_features" | "images": ...,
        "decoder_token_ids": int32 (B, T)}, int32 (B, T))`` right-padded with 0,
        and the number of captions dropped for being over ``sequence_length`` (their
        mirrored copies not counted).

    Raises:
        DataError: if every caption is over ``sequence_length``.
    """
    image_index, texts = [], []
    for i, captions in enumerate(data.captions):
        for caption in captions:
            image_index.append(i)
            texts.append(normalize_caption(caption))
    originals = len(texts)
    if mirrored is not None:  # the mirror image of image i is row N + i
        count = len(data.captions)
        image_index += [count + i for i in image_index]
        texts += [mirror_caption(text) for text in texts]
    lengths = tokenizer.untruncated(tf.constant(texts)).row_lengths().numpy() + 2
    keep = np.flatnonzero(lengths <= config.sequence_length)
    dropped = originals - int((keep < originals).sum())  # captions (not mirror copies)
    if not len(keep):
        raise DataError(
            f"{data.source}: all {originals} captions are longer than sequence_length="
            f"{config.sequence_length} subword tokens ([START]/[END] included); raise it with "
            "--set sequence_length=N"
        )
    tokens = tokenizer.with_boundaries(tf.constant([texts[i] for i in keep]))
    index = np.asarray(image_index, np.int32)[keep]
    ds = tf.data.Dataset.from_tensor_slices((index, tokens.to_tensor(), tokens.row_lengths())).map(
        lambda i, t, n: (i, t[:n])
    )
    if shuffle:
        ds = shuffle_each_epoch(ds, len(keep), config.seed)
    if isinstance(inputs, list):  # encoded images: decode per example, before batching
        encoded = tf.constant(inputs, tf.string)
        size, count = config.image_size, len(inputs)

        def decode(i, t):
            image = decode_image(tf.gather(encoded, i % count), size)
            if mirrored is not None:
                image = tf.cond(i >= count, lambda: tf.image.flip_left_right(image), lambda: image)
            return image, t

        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        key = "images"
        ds = ds.padded_batch(config.batch_size)
    else:
        grids = np.asarray(inputs)
        if mirrored is not None:
            grids = np.concatenate([grids, np.asarray(mirrored, grids.dtype)])
        features = tf.constant(grids)  # float16 grids, gathered per batch
        key = "image_features"
        ds = ds.padded_batch(config.batch_size).map(
            lambda i, t: (tf.cast(tf.gather(features, i), tf.float32), t),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return teacher_forcing(ds, key), dropped
