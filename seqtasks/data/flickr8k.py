"""The Flickr8k folder layout for :func:`~seqtasks.data.captions.load_captions`.

A Flickr8k folder holds ``Flickr8k.token.txt`` (lines ``<image>#<n><TAB><caption>``,
UTF-8), the split lists ``Flickr_8k.{train,dev,test}Images.txt`` (one image file name
per line) and the images, either in one sub-folder (any name, e.g.
``Flicker8k_Dataset/``) or in one ``.tar`` file (e.g.
``Flicker8k_Dataset_160px_train_dev.tar``, whose members such as
``Flicker8k_Dataset/1000268201_693b08cb0e.jpg`` are matched by base name).

Bad token lines (no tab, a key without ``#<n>``, an empty caption, bad UTF-8) go to
the caller's :class:`~seqtasks.data.records.BadRows`; an image of the split list with
no caption or no file, a split list naming an image twice and a split whose images
have no caption at all are always a :class:`~seqtasks.errors.DataError` naming
``file:line``. Captions of images outside the split are ignored.
"""

from __future__ import annotations

import logging
import os

from seqtasks.data.image_store import TAR_SUFFIXES, ImageStore
from seqtasks.data.records import BadRows, has_bad_bytes
from seqtasks.errors import DataError
from seqtasks.io import read_text, text_lines

log = logging.getLogger("seqtasks.data.captions")  # the loader's log name, as before the split

TOKEN_FILE = "Flickr8k.token.txt"
_SPLIT_FILE = "Flickr_8k.{split}Images.txt"
_TOKEN_FORMAT = "'<image>#<n><TAB><caption>'"


def read_flickr8k(
    folder: str, split: str, image_dir: str | None, max_examples: int | None, bad_rows: BadRows
) -> tuple[list[str], list[list[str]], ImageStore]:
    """The images of a Flickr8k split with their captions.

    Args:
        folder: the Flickr8k folder (holding :data:`TOKEN_FILE`).
        split: ``train``, ``dev``, ``test`` (the list ``Flickr_8k.<split>Images.txt``,
            in its order) or ``all`` (every image of the token file that has captions
            and a file, in token-file order).
        image_dir: the image folder or ``.tar``, already resolved against ``folder``;
            ``None``: the folder's one sub-folder or tar.
        max_examples: keep the first N images (``None``: all); only those are checked
            for files.
        bad_rows: where malformed token lines go (``error`` or ``skip``).

    Returns:
        ``(ids, captions, images)``: image ids, ``captions[i]`` the captions of
        ``ids[i]`` in file order, and the store reading their encoded bytes.

    Raises:
        DataError: a malformed token line (with ``error``); no split list for ``split``
            (naming those found); an image listed twice, or with no caption or file
            (``file:line``); no captioned image in the split; no or several image
            folders/tars.
    """
    token_path = os.path.join(folder, TOKEN_FILE)
    captions = read_token_file(token_path, bad_rows)
    summary = bad_rows.summary()
    if summary:
        log.warning("%s", summary)
    if split == "all":
        store = _image_store(folder, image_dir)
        ids = [image for image in captions if image in store]
        if not ids:
            raise DataError(
                f"{token_path}: none of its {len(captions)} images is in {store.description}"
            )
        ids = ids[:max_examples]
        return ids, [captions[i] for i in ids], store

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
    listed = read_split_file(split_path)
    if not any(image in captions for image, _ in listed):
        raise DataError(
            f"{split_path}: none of its {len(listed)} images has a caption in {TOKEN_FILE}"
        )
    listed = listed[:max_examples]
    for image, number in listed:
        if image not in captions:
            raise DataError(f"{split_path}:{number}: image {image} has no caption in {TOKEN_FILE}")
    store = _image_store(folder, image_dir)
    for image, number in listed:
        if image not in store:
            raise DataError(f"{split_path}:{number}: image {image} is not in {store.description}")
    ids = [image for image, _ in listed]
    return ids, [captions[i] for i in ids], store


def read_token_file(path: str, bad_rows: BadRows) -> dict[str, list[str]]:
    """Captions by image, in order of first appearance (each stripped, non-empty)."""
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


def read_split_file(path: str) -> list[tuple[str, int]]:
    """(image, line number) pairs of a split list, blank lines skipped.

    Raises:
        DataError: an image listed twice, or no image at all.
    """
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


def _image_store(folder: str, image_dir: str | None) -> ImageStore:
    """``image_dir``'s store, else the one sub-folder or tar of ``folder`` (not starting
    with '.' or '_')."""
    if image_dir is not None:
        return ImageStore(image_dir)
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
