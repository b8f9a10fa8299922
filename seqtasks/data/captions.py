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
"""

from __future__ import annotations

import dataclasses
import logging
import os
import zipfile
from collections.abc import Iterable

import numpy as np

from seqtasks.data.image_store import TAR_SUFFIXES, ImageStore, MemoryImageStore
from seqtasks.data.records import (
    BadRows,
    detect_format,
    has_bad_bytes,
    pick_column,
    read_columns,
    string_fields,
)
from seqtasks.errors import DataError
from seqtasks.io import read_text, text_lines

log = logging.getLogger(__name__)

TOKEN_FILE = "Flickr8k.token.txt"
_SPLIT_FILE = "Flickr_8k.{split}Images.txt"
_TOKEN_FORMAT = "'<image>#<n><TAB><caption>'"
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
        return _load_tfds(path[len("tfds:") :], split, max_examples, image_column, caption_column)
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
        data = _load_flickr8k(path, split, image_dir, max_examples, bad_rows)
    elif path.lower().endswith(".npz"):
        data, bad_rows = _load_npz(path, captions_file, max_examples, columns, on_bad_rows)
    elif format or path.lower().endswith(RECORD_SUFFIXES):
        bad_rows = BadRows(path, on_bad_rows)
        data = _load_records(path, image_dir, max_examples, columns, bad_rows)
    else:
        raise DataError(
            f"{path}: expected a Flickr8k folder (with {TOKEN_FILE}), a .csv/.tsv/.jsonl/"
            f".parquet file of image and caption rows (or pass --format) or a .npz of "
            f"feature vectors"
        )
    if on_bad_rows == "skip":
        data.skipped_bad_rows = len(bad_rows.rows)
    return data


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


# --- Flickr8k ---------------------------------------------------------------------------


def _load_flickr8k(
    folder: str, split: str, image_dir: str | None, max_examples: int | None, bad_rows: BadRows
) -> CaptionData:
    token_path = os.path.join(folder, TOKEN_FILE)
    captions = _read_token_file(token_path, bad_rows)
    summary = bad_rows.summary()
    if summary:
        log.warning("%s", summary)
    if split == "all":
        store = _flickr8k_store(folder, image_dir)
        ids = [image for image in captions if image in store]
        if not ids:
            raise DataError(
                f"{token_path}: none of its {len(captions)} images is in {store.description}"
            )
        ids = ids[:max_examples]
        return CaptionData(ids, [captions[i] for i in ids], folder, images=store)

    split_path = os.path.join(folder, _SPLIT_FILE.format(split=split))
    if not os.path.isfile(split_path):
        found = sorted(
            name[len("Flickr_8k.") : -len("Images.txt")]
            for name in os.listdir(folder)
            if name.startswith("Flickr_8k.") and name.endswith("Images.txt")
        )
        raise DataError(
            f"{folder}: no {os.path.basename(split_path)} for split {split!r}; "
            f"expected one of: {', '.join(found + ['all'])}"
        )
    listed = _read_split_file(split_path)
    if not any(image in captions for image, _ in listed):
        raise DataError(
            f"{split_path}: none of its {len(listed)} images has a caption in {TOKEN_FILE}"
        )
    listed = listed[:max_examples]
    for image, number in listed:
        if image not in captions:
            raise DataError(f"{split_path}:{number}: image {image} has no caption in {TOKEN_FILE}")
    store = _flickr8k_store(folder, image_dir)
    for image, number in listed:
        if image not in store:
            raise DataError(f"{split_path}:{number}: image {image} is not in {store.description}")
    ids = [image for image, _ in listed]
    return CaptionData(ids, [captions[i] for i in ids], folder, images=store)


def _read_token_file(path: str, bad_rows: BadRows) -> dict[str, list[str]]:
    """Captions by image, in order of first appearance."""
    captions: dict[str, list[str]] = {}
    text = read_text(path, keep_bad_bytes=bad_rows.mode == "skip")
    for number, line in enumerate(text_lines(text), start=1):
        if not line.strip():
            continue
        if has_bad_bytes(line):
            bad_rows.report(number, "not valid UTF-8", "not valid UTF-8; expected UTF-8 text")
            continue
        key, tab, caption = line.partition("\t")
        if not tab:
            bad_rows.report(number, "no tab", f"expected {_TOKEN_FORMAT}, found no tab")
            continue
        image, hash_sign, n = key.strip().rpartition("#")
        if not hash_sign or not image or not n.isdigit():
            bad_rows.report(
                number,
                "key without #<n>",
                f"expected {_TOKEN_FORMAT}, found key {key.strip()!r} without '#<n>'",
            )
            continue
        caption = caption.strip()
        if not caption:
            bad_rows.report(number, "empty caption", f"empty caption for image {image}")
            continue
        captions.setdefault(image, []).append(caption)
    return captions


def _read_split_file(path: str) -> list[tuple[str, int]]:
    """(image, line number) pairs of a split list, blank lines skipped."""
    listed: list[tuple[str, int]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text_lines(read_text(path)), start=1):
        image = line.strip()
        if not image:
            continue
        if image in seen:
            raise DataError(
                f"{path}:{number}: image {image} is listed twice (first at line {seen[image]}); "
                f"expected each image once"
            )
        seen[image] = number
        listed.append((image, number))
    if not listed:
        raise DataError(f"{path}: no images in the split list; expected one image name per line")
    return listed


def _flickr8k_store(folder: str, image_dir: str | None) -> ImageStore:
    if image_dir is not None:
        return ImageStore(_resolve(folder, image_dir))
    candidates = sorted(
        name
        for name in os.listdir(folder)
        if not name.startswith((".", "_"))
        and (
            os.path.isdir(os.path.join(folder, name))
            or (name.lower().endswith(TAR_SUFFIXES) and os.path.isfile(os.path.join(folder, name)))
        )
    )
    if len(candidates) == 1:
        return ImageStore(os.path.join(folder, candidates[0]))
    if not candidates:
        raise DataError(
            f"{folder}: no images; expected one sub-folder of images or one .tar of them "
            f"(or pass image_dir)"
        )
    raise DataError(
        f"{folder}: several places may hold the images ({', '.join(candidates)}); "
        f"pass image_dir to choose one"
    )


# --- records (CSV, TSV, JSONL, Parquet) ---------------------------------------------------


def _load_records(
    path: str, image_dir: str | None, max_examples: int | None, columns, bad_rows: BadRows
) -> CaptionData:
    ids, captions, lines = _read_caption_records(path, columns, bad_rows)
    base = os.path.dirname(path) or "."
    store = ImageStore(base if image_dir is None else _resolve(base, image_dir))
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
    return CaptionData(kept, [captions[i] for i in kept], path, images=store)


def _read_caption_records(
    path: str, columns, bad_rows: BadRows
) -> tuple[list[str], dict[str, list[str]], dict[str, list[int]]]:
    """Ids in first-appearance order, captions by id, and the lines of each id's rows.

    ``columns`` is ``(format, image_column, caption_column)``; rows with an empty,
    null or missing field go to ``bad_rows``.
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


def _load_npz(
    path: str, captions_file: str | None, max_examples: int | None, columns, on_bad_rows: str
) -> tuple[CaptionData, BadRows]:
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
    return CaptionData(ids, [captions[i] for i in ids], path, features=features), bad_rows


# --- helpers ----------------------------------------------------------------------------


def _resolve(base: str, image_dir: str) -> str:
    """``image_dir`` relative to the data folder ``base`` if it exists there, else as given."""
    inside = os.path.join(base, image_dir)
    return inside if os.path.exists(inside) else image_dir


# --- TFDS -------------------------------------------------------------------------------

_TFDS_CAPTION_FEATURES = ("captions", "caption", "text")


def _load_tfds(
    name: str,
    split: str,
    max_examples: int | None,
    image_column: str | None,
    caption_column: str | None,
) -> CaptionData:
    """Images (kept encoded) and captions of a TFDS split (see the module docstring)."""
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
    data = CaptionData([], [], where)
    store: dict[str, bytes] = {}
    for position, example in enumerate(tfds.as_numpy(dataset)):
        if max_examples is not None and len(data) >= max_examples:
            break
        filename = example.get("image/filename")
        image_id = filename.decode("utf-8") if isinstance(filename, bytes) else str(position)
        if image_id in store:
            image_id = f"{image_id}#{position}"
        captions = [c.strip() for c in _tfds_texts(example[caption_key]) if c.strip()]
        if not captions:
            raise DataError(f"{where}[{split}]: example {position} ({image_id}) has no caption")
        store[image_id] = bytes(example[image_key])
        data.ids.append(image_id)
        data.captions.append(captions)
    if not data.ids:
        raise DataError(f"{where}: split {split!r} has no examples")
    data.images = MemoryImageStore(where, store)
    return data


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
