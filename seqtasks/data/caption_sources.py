"""Caption sources other than a Flickr8k folder, for
:func:`~seqtasks.data.captions.load_captions`:

- **records** (:func:`load_records`): a CSV, TSV (header row), JSONL or Parquet file read
  with :func:`~seqtasks.data.records.read_columns`, one caption per record in an image
  and a caption column; several rows per image give several captions, grouped by image
  in order of first appearance; the images are files of an :class:`ImageStore`;
- **feature vectors** (:func:`load_npz`): a ``.npz`` of one float array per id, all of
  one shape, ``(dim,)`` or ``(positions, dim)``, with the captions in a records file
  whose image column holds the ids;
- **TFDS** (:func:`load_tfds`): a tensorflow-datasets split, its images kept encoded in
  a :class:`MemoryImageStore`.

Each returns the ids, their captions (``captions[i]`` for ``ids[i]``: stripped,
non-empty, in file order) and the images or vectors; bad rows go to the caller's
:class:`~seqtasks.data.records.BadRows`, and every error is a
:class:`~seqtasks.errors.DataError` naming the file (and line).
"""

from __future__ import annotations

import logging
import os
import zipfile

import numpy as np

from seqtasks.data.image_store import ImageStore, MemoryImageStore
from seqtasks.data.records import BadRows, detect_format, pick_column, read_columns, string_fields
from seqtasks.errors import DataError

log = logging.getLogger("seqtasks.data.captions")  # the loader's log name, as before the split

# ``columns`` below is ``(format, image_column, caption_column)``: the records format
# (``None``: from the extension) and the two column names (``None``: image, caption).


def _warn_or_fail(bad_rows: BadRows, found: bool) -> None:
    """Warn with the summary of skipped rows; with nothing found, fail naming them."""
    summary = bad_rows.summary()
    if summary:
        log.warning("%s", summary)
    if not found:
        raise DataError(
            f"{bad_rows.path}: no images in the file; expected rows of image and caption"
            + (f" ({summary})" if summary else "")
        )


# --- records (CSV, TSV, JSONL, Parquet) ---------------------------------------------------


def load_records(
    path: str, image_dir: str | None, max_examples: int | None, columns, bad_rows: BadRows
) -> tuple[list[str], list[list[str]], ImageStore]:
    """``(ids, captions, images)`` of a records file of image/caption rows.

    ``image_dir`` (already resolved; ``None``: the file's folder) holds the images; an
    image without a file is a bad row (every row of it, with ``skip``). At most
    ``max_examples`` images are kept (``None``: all), the first ones that have a file.

    Raises:
        DataError: a missing column, one column as both image and caption, a malformed
            row or missing image (with ``error``), or no image left.
    """
    ids, captions, lines = _read_caption_records(path, columns, bad_rows)
    store = ImageStore((os.path.dirname(path) or ".") if image_dir is None else image_dir)
    kept = []
    for image in ids:
        if max_examples is not None and len(kept) >= max_examples:
            break
        if image in store:
            kept.append(image)
            continue
        for line in lines[image]:  # with skip every row of the image is a bad row
            bad_rows.report(
                line, "image not found", f"image file {image} not found in {store.description}"
            )
    _warn_or_fail(bad_rows, bool(kept))
    return kept, [captions[i] for i in kept], store


def _read_caption_records(
    path: str, columns, bad_rows: BadRows
) -> tuple[list[str], dict[str, list[str]], dict[str, list[int]]]:
    """Ids in first-appearance order, captions by id, and the lines of each id's rows.

    Rows with an empty, null or missing field go to ``bad_rows``.
    """
    format, image_column, caption_column = columns
    format = detect_format(path, format)

    def pick(fields) -> tuple[str, str]:
        keys = (
            pick_column(path, image_column, ("image",), fields, "image", ignore_case=True),
            pick_column(path, caption_column, ("caption",), fields, "caption", ignore_case=True),
        )
        if keys[0] == keys[1]:
            raise DataError(f"{path}: column {keys[0]!r} cannot be both the image and the caption")
        return keys

    captions: dict[str, list[str]] = {}
    lines: dict[str, list[int]] = {}
    for keys, record in read_columns(path, format, bad_rows, pick):
        pair = _caption_row(record, keys, bad_rows)
        if pair is not None:
            captions.setdefault(pair[0], []).append(pair[1])
            lines.setdefault(pair[0], []).append(record.line)
    return list(captions), captions, lines


def _caption_row(record, keys: tuple[str, str], bad_rows: BadRows) -> tuple[str, str] | None:
    """``(image, caption)`` of a record, stripped, or ``None`` after reporting why it is bad."""
    values = string_fields(
        record,
        keys,
        ("image", "caption"),
        bad_rows,
        lambda key, kind: "empty image name" if kind == "image" else "empty caption",
    )
    return None if values is None else (values[0].strip(), values[1].strip())


# --- feature vectors --------------------------------------------------------------------


def load_npz(
    path: str, captions_file: str | None, max_examples: int | None, columns, on_bad_rows: str
) -> tuple[list[str], list[list[str]], np.ndarray, BadRows]:
    """``(ids, captions, features, bad_rows)`` of a ``.npz`` of feature vectors.

    ``captions_file`` is the records file of captions keyed by vector id (default
    ``<same stem>.csv``); ``features`` is float32 of shape ``(N, dim)`` or
    ``(N, positions, dim)``, row ``i`` for ``ids[i]``; ``bad_rows`` holds the captions
    file's bad rows (a caption row without a vector is one). Vectors without captions
    are ignored.

    Raises:
        DataError: no captions file; an unreadable archive or a single array; a missing
            vector (with ``error``); a vector that is not numeric, finite, 1-D or 2-D, or
            not of the first vector's shape; no vector left.
    """
    if captions_file is None:
        captions_file = os.path.splitext(path)[0] + ".csv"
        if not os.path.isfile(captions_file):
            raise DataError(
                f"{path}: no captions file {captions_file}; expected a CSV of image,caption "
                f"rows (image = vector id) beside the .npz, or pass captions_file"
            )
    elif not os.path.isfile(captions_file):
        raise DataError(f"{captions_file}: no such captions file")
    bad_rows = BadRows(captions_file, on_bad_rows)
    ids, captions, lines = _read_caption_records(captions_file, columns, bad_rows)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz archive: {e}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: expected a .npz archive of named arrays, found a single array")
    with archive:
        keys = set(archive.files)
        kept = []
        for image in ids:
            if max_examples is not None and len(kept) >= max_examples:
                break
            if image in keys:
                kept.append(image)
                continue
            for line in lines[image]:  # with skip every row of the vector is a bad row
                bad_rows.report(line, "no feature vector", f"no feature vector {image!r} in {path}")
        _warn_or_fail(bad_rows, bool(kept))
        ids = kept
        vectors = []
        first: tuple[str, tuple[int, ...]] | None = None
        for image in ids:
            try:
                vector = archive[image]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
                raise DataError(f"{path}: cannot read vector {image!r}: {e}") from None
            if vector.dtype.kind not in "fiu":
                raise DataError(
                    f"{path}: vector {image!r} has dtype {vector.dtype}; expected numbers (float)"
                )
            if vector.ndim not in (1, 2) or 0 in vector.shape:
                raise DataError(
                    f"{path}: vector {image!r} has shape {vector.shape}; expected (dim,) or "
                    f"(positions, dim)"
                )
            if first is None:
                first = (image, vector.shape)
            elif vector.shape != first[1]:
                raise DataError(
                    f"{path}: vector {image!r} has shape {vector.shape}, but {first[0]!r} has "
                    f"{first[1]}; expected all vectors of one shape"
                )
            vector = vector.astype(np.float32)
            if not np.isfinite(vector).all():
                raise DataError(f"{path}: vector {image!r} has NaN or infinite values")
            vectors.append(vector)
    features = np.stack(vectors).astype(np.float32)
    return ids, [captions[i] for i in ids], features, bad_rows


# --- TFDS -------------------------------------------------------------------------------

_TFDS_CAPTION_FEATURES = ("captions", "caption", "text")


def load_tfds(
    name: str,
    split: str,
    max_examples: int | None,
    image_column: str | None,
    caption_column: str | None,
) -> tuple[list[str], list[list[str]], MemoryImageStore]:
    """``(ids, captions, images)`` of the TFDS split ``split`` of dataset ``name``.

    The image feature is ``image_column`` or the dataset's one ``Image`` feature, read
    still encoded (``tfds.decode.SkipDecoding``); the captions are ``caption_column`` or
    the first of ``captions``, ``caption``, ``text``: a string, a list of strings or a
    sequence of ``{"text": ...}`` (the ``coco_captions`` layout). Ids are the
    ``image/filename`` feature when there is one (``<name>#<position>`` when repeated),
    else the example's position. Needs the dataset prepared locally (``TFDS_DATA_DIR``)
    or internet access.

    Raises:
        DataError: the dataset or split cannot be loaded; no such image or caption
            feature; an example without a caption; an empty split.
    """
    import tensorflow_datasets as tfds

    where = f"tfds:{name}"
    try:
        builder = tfds.builder(name)
    except Exception as e:  # tfds raises many types (not found, bad name, network)
        raise DataError(f"{where}: cannot load split {split!r}: {_first_line(e)}") from None
    features = builder.info.features
    images = [key for key, feature in features.items() if isinstance(feature, tfds.features.Image)]
    image_key = image_column or (images[0] if len(images) == 1 else None)
    if image_key not in images:
        raise DataError(
            f"{where}: no image feature {image_key or ''!r}; its image features are: "
            f"{', '.join(images) or 'none'}; pass --image-column"
        )
    caption_key = caption_column or next((k for k in _TFDS_CAPTION_FEATURES if k in features), None)
    if caption_key not in features:
        raise DataError(
            f"{where}: no caption feature {caption_key or ''!r} (tried "
            f"{', '.join(_TFDS_CAPTION_FEATURES)}); the features are: "
            f"{', '.join(features)}; pass --caption-column"
        )
    try:
        dataset = builder.as_dataset(
            split=split, decoders={image_key: tfds.decode.SkipDecoding()}, shuffle_files=False
        )
    except Exception as e:  # not prepared, no such split, network
        raise DataError(f"{where}: cannot load split {split!r}: {_first_line(e)}") from None
    ids: list[str] = []
    all_captions: list[list[str]] = []
    store: dict[str, bytes] = {}
    for position, example in enumerate(tfds.as_numpy(dataset)):
        if max_examples is not None and len(ids) >= max_examples:
            break
        filename = example.get("image/filename")
        image_id = filename.decode("utf-8") if isinstance(filename, bytes) else str(position)
        if image_id in store:
            image_id = f"{image_id}#{position}"
        captions = [c.strip() for c in _tfds_texts(example[caption_key]) if c.strip()]
        if not captions:
            raise DataError(f"{where}[{split}]: example {position} ({image_id}) has no caption")
        store[image_id] = bytes(example[image_key])
        ids.append(image_id)
        all_captions.append(captions)
    if not ids:
        raise DataError(f"{where}: split {split!r} has no examples")
    return ids, all_captions, MemoryImageStore(where, store)


def _tfds_texts(value) -> list[str]:
    """Caption strings of a TFDS feature value: bytes, an array of bytes, or {"text": ...}."""
    if isinstance(value, dict):
        if "text" not in value:
            raise DataError(
                f"the caption feature is a dict without 'text' (keys: {', '.join(value)})"
            )
        value = value["text"]
    if isinstance(value, bytes):
        return [value.decode("utf-8")]
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.ravel(value)]


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
