"""Image captioning (one-to-many): images, or feature vectors, with reference captions.

:func:`load_captions` reads any supported source into a :class:`CaptionData`:

- **the Flickr8k layout**: a folder holding ``Flickr8k.token.txt`` (lines
  ``<image>#<n><TAB><caption>``, UTF-8), the split lists
  ``Flickr_8k.{train,dev,test}Images.txt`` (one image file name per line) and the
  images, either in one sub-folder (any name, e.g. ``Flicker8k_Dataset/``) or in one
  ``.tar`` file (e.g. ``Flicker8k_Dataset_160px_train_dev.tar``, whose members such as
  ``Flicker8k_Dataset/1000268201_693b08cb0e.jpg`` are matched by base name); pass
  ``image_dir`` when the folder holds several candidates. ``split`` picks
  ``Flickr_8k.<split>Images.txt``; ``split="all"`` takes every image of the token
  file that has captions and exists, in token-file order;
- **records**: a CSV, TSV (header row), JSONL or Parquet file read with
  :func:`~seqtasks.data.records.read_records` (format from the extension, or
  ``format``), one caption per record in the columns ``image_column`` /
  ``caption_column`` (default ``image`` / ``caption``, in any case; other columns
  are ignored); several rows per image give several captions, grouped by image in
  order of first appearance. Images are files relative to ``image_dir`` (default:
  the data file's folder), or members of a ``.tar`` given as ``image_dir``;
- **feature vectors** (``*.npz``): one array per id, all of one shape, ``(dim,)`` or
  ``(positions, dim)``; the captions come from a records file as above whose image
  column holds the ids (``captions_file``, default ``<same stem>.csv`` beside the npz);
- **TFDS**: ``tfds:<name>`` (e.g. ``tfds:coco_captions``) through tensorflow-datasets,
  needing the dataset prepared locally (``TFDS_DATA_DIR``) or internet access. The
  image feature is ``image_column`` or the dataset's one ``Image`` feature, read
  still encoded (``tfds.decode.SkipDecoding``); the captions are ``caption_column``
  or the first of ``captions``, ``caption``, ``text``: a string, a list of strings
  or a sequence of ``{"text": ...}`` (the ``coco_captions`` layout). Ids are the
  ``image/filename`` feature when there is one, else the example's position. The
  encoded images of the split are held in memory (:class:`MemoryImageStore`).

Images are never decoded nor extracted here: :class:`ImageStore` hands out the
encoded bytes (from a folder, or read in place from a tar) and the recipe decodes
them in ``tf.data``, where a file that is not an image is reported.

Policy for imperfect data (``on_bad_rows``, default ``error``):

- a bad row is a token line without a tab, a key without ``#<n>``, an empty caption,
  a record with the wrong number of fields, a missing, null or empty image or
  caption, a line that is not UTF-8, an invalid JSONL line, or a record whose image
  file (feature vector) does not exist. With ``error`` the first one is an error
  naming ``file:line`` (``file:row N`` for Parquet); with ``skip`` bad rows are left
  out (every row of a missing image), a warning gives their count and first five
  line numbers, and ``CaptionData.skipped_bad_rows`` their count. A missing column
  is always an error listing the columns found;
- an image listed in a Flickr8k split that has no file, or no caption, is an error
  naming ``file:line``; a split whose images have no caption at all (the shared
  Flickr8k test split, whose captions are held out) is an error;
- captions of images outside the chosen split are ignored, so is the known quirk of
  the original token file (five lines for ``2258277193_586949ec62.jpg.1``, an image
  that does not exist); feature vectors without captions are ignored;
- ``max_examples`` keeps the first N images (with ``skip``: the first N whose files
  exist); only those kept are checked for files.

Every error is a :class:`~seqtasks.errors.DataError` naming the file (and line)
and what was expected.

This module holds the :class:`CaptionData` type and the :func:`load_captions`
dispatcher (path checks, option checks, ``image_dir`` resolution); the readers are
:mod:`seqtasks.data.flickr8k` (the Flickr8k folder) and
:mod:`seqtasks.data.caption_sources` (records, ``.npz`` feature vectors, TFDS).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import numpy as np

from seqtasks.data.caption_sources import load_npz, load_records, load_tfds
from seqtasks.data.flickr8k import TOKEN_FILE, read_flickr8k
from seqtasks.data.image_store import TAR_SUFFIXES, ImageStore, MemoryImageStore
from seqtasks.data.records import BadRows
from seqtasks.errors import DataError

# TOKEN_FILE, TAR_SUFFIXES, ImageStore and MemoryImageStore stay importable from here.
__all__ = [
    "RECORD_SUFFIXES",
    "TAR_SUFFIXES",
    "TOKEN_FILE",
    "CaptionData",
    "ImageStore",
    "MemoryImageStore",
    "load_captions",
]

RECORD_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".parquet", ".pq")


@dataclasses.dataclass
class CaptionData:
    """Images (or feature vectors) with their reference captions.

    Attributes:
        ids: one per image / feature vector, unique, in a stable order (split-file,
            token-file or CSV order).
        captions: ``captions[i]`` holds the reference captions of ``ids[i]``: at least
            one each, stripped, non-empty, in file order.
        source: where the data came from (a path), for messages and metadata.
        images: reads the encoded image bytes of an id; ``None`` for feature data.
        features: float32 array of shape ``(N, dim)`` or ``(N, positions, dim)``,
            row ``i`` for ``ids[i]``; ``None`` for image data.
        skipped_bad_rows: rows skipped as malformed with ``on_bad_rows="skip"``
            (``None`` when bad rows are errors).
    """

    ids: list[str]
    captions: list[list[str]]
    source: str
    images: ImageStore | MemoryImageStore | None = None
    features: np.ndarray | None = None
    skipped_bad_rows: int | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_captions(self) -> int:
        """Total number of captions over all images."""
        return sum(len(c) for c in self.captions)

    def subset(self, indices: Iterable[int]) -> CaptionData:
        """The same data restricted to ``indices``, in the order given."""
        indices = [int(i) for i in indices]
        return CaptionData(
            ids=[self.ids[i] for i in indices],
            captions=[list(self.captions[i]) for i in indices],
            source=self.source,
            images=self.images,
            features=None
            if self.features is None
            else self.features[np.asarray(indices, dtype=np.int64)],
            skipped_bad_rows=self.skipped_bad_rows,
        )


def load_captions(
    path: str,
    *,
    split: str = "train",
    image_dir: str | None = None,
    captions_file: str | None = None,
    max_examples: int | None = None,
    format: str | None = None,
    image_column: str | None = None,
    caption_column: str | None = None,
    on_bad_rows: str = "error",
) -> CaptionData:
    """Read images or feature vectors with their captions (see the module docstring).

    Args:
        path: a Flickr8k-layout folder (holding ``Flickr8k.token.txt``), a records file
            (``.csv``, ``.tsv``, ``.jsonl``, ``.parquet``) of image/caption rows, a
            ``.npz`` of feature vectors, or ``tfds:<name>``.
        split: Flickr8k split (``train``, ``dev``, ``test``: the list
            ``Flickr_8k.<split>Images.txt``; ``all``: every captioned image that
            exists), or TFDS split (e.g. ``train``, ``validation``, ``train[:10%]``).
            Ignored for records and npz.
        image_dir: the image folder or ``.tar``; a relative path is looked up in the
            data folder first, then in the working directory. Default: the one
            sub-folder or tar of a Flickr8k folder; the records file's folder.
        captions_file: for ``.npz`` only, the records file of captions whose image
            column holds the vector ids (default ``<same stem>.csv``).
        max_examples: keep only the first N images (``None``: all).
        format: ``tsv``, ``csv``, ``jsonl``, ``parquet`` or ``None``/``"auto"`` (from
            the extension) for the records file (the captions file of a ``.npz``).
        image_column: the field holding the image file (vector id); default ``image``
            (TFDS: the feature holding the image; default its one Image feature).
        caption_column: the field holding the caption; default ``caption`` (TFDS: the
            first of ``captions``, ``caption``, ``text``).
        on_bad_rows: ``error`` (default) or ``skip`` (see the module docstring).

    Returns:
        The images (``images`` set) or vectors (``features`` set) with their captions.

    Raises:
        DataError: a missing or unrecognised path; a missing column; a malformed
            token, split or records line (``file:line``); an empty caption; a listed
            image with no file or no caption; an empty split or file; bad encoding;
            feature vectors that are missing, non-numeric, non-finite or of
            different shapes (bad rows are skipped instead with ``skip``).
    """
    if max_examples is not None and max_examples < 1:
        raise DataError(f"max_examples: expected a positive number; received: {max_examples}")
    if format == "auto":
        format = None
    if path.startswith("tfds:"):
        if format:
            raise DataError(f"--format applies to caption files; received it with {path}")
        ids, captions, images = load_tfds(
            path[len("tfds:") :], split, max_examples, image_column, caption_column
        )
        return CaptionData(ids, captions, path, images=images)
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory")
    columns = (format, image_column, caption_column)
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, TOKEN_FILE)):
            raise DataError(
                f"{path}: no {TOKEN_FILE} in this folder; expected a Flickr8k folder "
                f"({TOKEN_FILE}, Flickr_8k.<split>Images.txt, images), a records file "
                f"(.csv, .tsv, .jsonl, .parquet) or a .npz"
            )
        for flag, value in zip(("--format", "--image-column", "--caption-column"), columns):
            if value:
                raise DataError(
                    f"{flag} applies to CSV, TSV, JSONL and Parquet caption files; received it "
                    f"with the Flickr8k folder {path}"
                )
        bad_rows = BadRows(os.path.join(path, TOKEN_FILE), on_bad_rows)
        image_dir = None if image_dir is None else _resolve(path, image_dir)
        ids, captions, images = read_flickr8k(path, split, image_dir, max_examples, bad_rows)
        data = CaptionData(ids, captions, path, images=images)
    elif path.lower().endswith(".npz"):
        ids, captions, features, bad_rows = load_npz(
            path, captions_file, max_examples, columns, on_bad_rows
        )
        data = CaptionData(ids, captions, path, features=features)
    elif format or path.lower().endswith(RECORD_SUFFIXES):
        bad_rows = BadRows(path, on_bad_rows)
        base = os.path.dirname(path) or "."
        image_dir = None if image_dir is None else _resolve(base, image_dir)
        ids, captions, images = load_records(path, image_dir, max_examples, columns, bad_rows)
        data = CaptionData(ids, captions, path, images=images)
    else:
        raise DataError(
            f"{path}: expected a Flickr8k folder (with {TOKEN_FILE}), a .csv/.tsv/.jsonl/"
            f".parquet file of image and caption rows (or pass --format) or a .npz of "
            f"feature vectors"
        )
    if on_bad_rows == "skip":
        data.skipped_bad_rows = len(bad_rows.rows)
    return data


def _resolve(base: str, image_dir: str) -> str:
    """``image_dir`` relative to the data folder ``base`` if it exists there, else as given."""
    inside = os.path.join(base, image_dir)
    return inside if os.path.exists(inside) else image_dir


def check_images(data: CaptionData) -> None:
    """Decode every image of ``data`` once (nothing for feature vectors), so that a file that
    is not an image, or a corrupt one, fails before anything is written.

    Raises:
        DataError: naming the image store and the image id of the first bad image.
    """
    from seqtasks.images import check_image

    if data.images is None:
        return
    for image_id, encoded in zip(data.ids, data.images.read_many(data.ids)):
        check_image(encoded, f"{data.images.description}: {image_id}", decode=True)


def load_validation_captions(
    name: str,
    train: CaptionData,
    *,
    training_data: str,
    image_dir: str | None = None,
    image_column: str | None = None,
    caption_column: str | None = None,
    on_bad_rows: str = "error",
) -> CaptionData:
    """The validation captions ``name`` for the training data ``train`` (read from
    ``training_data``): a split of the same Flickr8k folder or TFDS dataset (e.g. ``dev``),
    or another records (.csv/.tsv/.jsonl/.parquet) or .npz file; its images are checked
    (:func:`check_images`).

    Raises:
        ConfigError: ``name`` is neither a file nor a split of ``training_data``, or it
            holds images where ``train`` holds feature vectors (or the other way round).
        DataError: for bad rows or images in it.
    """
    from seqtasks.errors import ConfigError

    columns = {
        "image_column": image_column,
        "caption_column": caption_column,
        "on_bad_rows": on_bad_rows,
    }
    if name.lower().endswith(".npz"):
        val = load_captions(name, **columns)
    elif name.lower().endswith(RECORD_SUFFIXES):
        val = load_captions(name, image_dir=image_dir, **columns)
    elif training_data.startswith("tfds:"):
        val = load_captions(
            training_data, split=name, image_column=image_column, caption_column=caption_column
        )
    elif os.path.isdir(training_data):
        val = load_captions(training_data, split=name, image_dir=image_dir, on_bad_rows=on_bad_rows)
    else:
        raise ConfigError(
            f"config field 'validation_data': {name!r} is not a .csv or .npz file, and a "
            f"split name needs a Flickr8k folder as --data; received: {training_data!r}"
        )
    if (val.features is None) != (train.features is None):
        raise ConfigError(
            f"config field 'validation_data': {name} holds "
            f"{'images' if val.features is None else 'feature vectors'}, the training data "
            f"{'images' if train.features is None else 'feature vectors'}"
        )
    check_images(val)
    return val


def caption_texts(data: CaptionData) -> list[str]:
    """Every caption of ``data``, normalised as training sees it (lower case, no punctuation)."""
    from seqtasks.caption_metrics import normalize_caption

    return [normalize_caption(c) for captions in data.captions for c in captions]


def as_grid(features: np.ndarray) -> np.ndarray:
    """Feature vectors ``(N, dim)`` as one-position grids ``(N, 1, dim)``; grids unchanged."""
    features = np.asarray(features, np.float32)
    return features[:, None, :] if features.ndim == 2 else features
