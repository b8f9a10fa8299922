"""Images for captioning: check encoded bytes, decode and resize in TensorFlow, cache features.

:func:`decode_images` is the one decoding path of training pipelines and of
the exported SavedModel, so a served image is resized exactly as training
images were: ``tf.io.decode_image`` (JPEG, PNG, GIF first frame, BMP) to 3
channels (grayscale is repeated, an alpha channel dropped), then a bilinear,
antialiased resize to ``image_size`` x ``image_size`` without keeping the
aspect ratio (the shared Flickr8k copy is already squashed that way).

:func:`image_features` runs a frozen image encoder once over a dataset's
images and caches the result on disk (``.npy`` float16, keyed by the images,
the encoder and its weights), so training epochs only read feature grids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from seqtasks.errors import DataError

log = logging.getLogger(__name__)

_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)


def image_format(data: bytes) -> str | None:
    """``"JPEG"``, ``"PNG"``, ``"GIF"`` or ``"BMP"`` from the leading bytes; None otherwise."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def check_image(data: bytes, where: str, *, decode: bool = False) -> None:
    """Raise :class:`DataError` if ``data`` is not an image TensorFlow can decode.

    Args:
        data: the file's bytes.
        where: the file (and line) named in the message.
        decode: also decode it (catches truncated or corrupt files; slower).
    """
    if image_format(data) is None:
        raise DataError(
            f"{where}: not an image (expected JPEG, PNG, GIF or BMP bytes; "
            f"the file starts with {data[:8]!r})"
        )
    if decode:
        try:
            tf.io.decode_image(data, channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"{where}: the image cannot be decoded ({message})") from None


def decode_image(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """tf.string scalar (encoded image) -> float32 ``(image_size, image_size, 3)`` in [0, 255]."""
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)


def decode_images(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """tf.string ``(B,)`` -> float32 ``(B, image_size, image_size, 3)`` pixels in [0, 255]."""
    return tf.map_fn(
        lambda b: decode_image(b, image_size),
        image_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )


def image_dataset(
    encoded: list[bytes], image_size: int, batch_size: int = 64, *, mirror: bool = False
) -> tf.data.Dataset:
    """Batches of decoded images float32 ``(B, S, S, 3)`` from encoded bytes, in order;
    ``mirror``: each flipped left to right."""
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(encoded, tf.string))

    def decode(image_bytes):
        image = decode_image(image_bytes, image_size)
        return tf.image.flip_left_right(image) if mirror else image

    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _find_undecodable(encoded: list[bytes], names: list[str]) -> None:
    for data, name in zip(encoded, names):
        check_image(data, name, decode=True)


def encode_images(
    image_encoder, encoded: list[bytes], names: list[str], image_size: int, *, mirror=False
) -> np.ndarray:
    """Run ``image_encoder`` over encoded images; float32 ``(N, positions, channels)``.
    ``mirror``: over their mirror images (flipped left to right) instead.

    Progress is shown by :mod:`seqtasks.progress` (a bar on a terminal, plain lines in
    logs).

    Raises:
        DataError: naming the first image that cannot be decoded.
    """
    from seqtasks.progress import progress

    for data, name in zip(encoded, names):
        check_image(data, name)
    batch_size = 64
    try:
        parts = []
        label = "encoding mirror images" if mirror else "encoding images"
        with progress(label, len(encoded), "images") as bar:
            for batch in image_dataset(encoded, image_size, batch_size, mirror=mirror):
                parts.append(np.asarray(image_encoder.predict_on_batch(batch)))
                bar.update(int(batch.shape[0]))
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)
    except tf.errors.InvalidArgumentError:
        _find_undecodable(encoded, names)  # raises a DataError naming the file
        raise


def _cache_key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def weights_digest(model) -> str:
    """sha256 (16 hex digits) of a model's weight values: identifies an encoder exactly."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:16]


def images_stamp(location: str, ids: list[str]) -> list:
    """What changes when the images change: size and mtime of a tar, or of each image file.

    A ``tfds:<name>`` location (images of a prepared TFDS dataset) is its own stamp:
    name a new version (``tfds:<name>:<version>``) to tell one from another.
    """
    if location.startswith("tfds:"):
        return [location]
    if os.path.isfile(location):
        stat = os.stat(location)
        return [os.path.abspath(location), stat.st_size, stat.st_mtime_ns]
    stamps = []
    for image_id in ids:
        stat = os.stat(os.path.join(location, image_id))
        stamps.append([stat.st_size, stat.st_mtime_ns])
    return [os.path.abspath(location), stamps]


def cached_image_features(
    image_encoder,
    read_images,
    ids: list[str],
    *,
    image_size: int,
    source: str,
    cache_dir: str | None,
    mirror: bool = False,
) -> tuple[np.ndarray, dict]:
    """Feature grids of ``ids`` (of their mirror images with ``mirror``: flipped left to
    right), computed once and cached in ``cache_dir``.

    The cache key covers the image location (folder or tar: path, and the
    size and modification time of the tar or of every image file), the ids
    in order, the input size and a digest of the encoder's weight values, so
    other images, edited images or another encoder never hit a stale entry.

    Args:
        image_encoder: a frozen model from
            :func:`seqtasks.models.image_encoders.build_image_encoder`.
        read_images: ``ids -> list[bytes]`` (e.g. ``ImageStore.read_many``).
        ids: the images, in the order of the returned rows.
        image_size: input size of the encoder.
        source: the image folder or tar the ids are read from.
        cache_dir: where ``<key>.npy`` and ``<key>.json`` live; None: no cache.
        mirror: encode each image flipped left to right (default False; a separate
            cache entry).

    Returns:
        ``(features float16 (N, positions, channels), info)`` where ``info``
        says whether the cache was hit and how long encoding took (seconds).
    """
    encoder_id = {"name": image_encoder.name, "weights": weights_digest(image_encoder)}
    parts = {
        "images": images_stamp(source, ids),
        "ids": ids,
        "image_size": image_size,
        "encoder": encoder_id,
    }
    if mirror:  # (absent otherwise, so existing cache entries keep their keys)
        parts["mirror"] = True
    key = _cache_key(parts)
    path = os.path.join(cache_dir, f"{key}.npy") if cache_dir else None
    if path and os.path.isfile(path):
        features = np.load(path)
        if features.shape[0] == len(ids):
            log.info("image features of %d images from the cache %s", len(ids), path)
            return features, {"cache": path, "cache_hit": True, "seconds": 0.0}
    start = time.perf_counter()
    encoded = read_images(ids)
    features = encode_images(image_encoder, encoded, ids, image_size, mirror=mirror)
    features = features.astype(np.float16)
    seconds = time.perf_counter() - start
    log.info("encoded %d %simages in %.1f s (%.1f images/s)", len(ids), "mirror " if mirror else "",
             seconds, len(ids) / seconds)  # fmt: skip
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".npy.tmp", dir=cache_dir)
        os.close(fd)
        try:
            with open(tmp, "wb") as f:
                np.save(f, features)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        meta = {"source": source, "images": len(ids), "encoder": encoder_id, "seconds": seconds,
                "mirror": mirror}  # fmt: skip
        with open(os.path.join(cache_dir, f"{key}.json"), "w") as f:
            json.dump(meta, f, indent=2)
    return features, {"cache": path, "cache_hit": False, "seconds": round(seconds, 2)}


def read_image_file(path: str) -> bytes:
    """The bytes of the image file ``path``, checked to decode (JPEG, PNG, GIF, BMP).

    Raises:
        UserError: one line naming ``path``: no such file, unreadable, or not an image.
    """
    from seqtasks.errors import UserError

    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None
    check_image(data, path, decode=True)
    return data


def read_feature_file(path: str, shape: tuple) -> np.ndarray:
    """A ``.npy`` feature array of exactly ``shape``, as float32 (a captioner's input).

    Raises:
        UserError: one line naming ``path``: no such file, not a ``.npy`` array, or
            another shape.
    """
    from seqtasks.errors import UserError

    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a .npy array ({e})") from None
    array = np.asarray(array, np.float32)
    if array.shape != tuple(shape):
        raise UserError(
            f"{path}: expected a feature array of shape {tuple(shape)}; found {array.shape}"
        )
    return array
