"""Encoded images by id, never decoded nor extracted here: :class:`ImageStore` reads them
from a folder or in place from a .tar; :class:`MemoryImageStore` holds them in memory
(TFDS splits). Both hand out the bytes; the recipe decodes them in ``tf.data``."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence

from seqtasks.errors import DataError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")  # an image store can be one of these archives


class ImageStore:
    """Encoded image bytes by id, from a folder or from a .tar (read in place, never extracted).

    - **folder**: an id is a file path relative to the folder (``"x.jpg"``,
      ``"sub/x.jpg"``).
    - **tar** (``.tar``; ``.tar.gz``/``.tgz`` work but every read decompresses from the
      start, so prefer a plain tar: JPEG does not compress further): the members are
      indexed once when the store is made; an id is a member's full name or its base
      name (the first member wins when two share a base name). Each read opens the
      archive anew, so a store is safe to share between threads and to pickle.

    Attributes:
        description: the folder or tar path, for messages.

    Raises:
        DataError: ``path`` is neither a folder nor a readable tar archive.
    """

    def __init__(self, path: str):
        self.description = path
        self._tar_index: dict[str, tarfile.TarInfo] | None = None
        if os.path.isdir(path):
            return
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such image folder or .tar file")
        try:
            with tarfile.open(path) as archive:
                members = [m for m in archive.getmembers() if m.isfile()]
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(
                f"{path}: not a readable tar archive ({e}); expected a folder of images or a .tar"
            ) from None
        index: dict[str, tarfile.TarInfo] = {}
        for member in members:
            index.setdefault(os.path.basename(member.name), member)
        for member in members:
            index[member.name] = member
        self._tar_index = index

    @property
    def is_tar(self) -> bool:
        """True when the images are read from a tar archive."""
        return self._tar_index is not None

    def __contains__(self, image_id: object) -> bool:
        if not isinstance(image_id, str) or not image_id:
            return False
        if self._tar_index is not None:
            return image_id in self._tar_index
        return os.path.isfile(os.path.join(self.description, image_id))

    def __repr__(self) -> str:
        return f"ImageStore({self.description!r})"

    def read(self, image_id: str) -> bytes:
        """The encoded bytes of one image (not decoded).

        Raises:
            DataError: ``image_id`` is not in the store, or cannot be read.
        """
        return self.read_many([image_id])[0]

    def read_many(self, ids: Sequence[str]) -> list[bytes]:
        """The encoded bytes of several images, in the order of ``ids``.

        A tar is opened once and its members are read in archive order (one forward
        pass), whatever the order of ``ids``.

        Raises:
            DataError: an id is not in the store, or the file cannot be read.
        """
        ids = list(ids)
        for image_id in ids:
            if image_id not in self:
                raise DataError(f"image {image_id!r} is not in {self.description}")
        if self._tar_index is None:
            return [self._read_file(image_id) for image_id in ids]
        index = self._tar_index
        order = sorted(range(len(ids)), key=lambda i: index[ids[i]].offset_data)
        result: list[bytes] = [b""] * len(ids)
        try:
            with tarfile.open(self.description) as archive:
                for i in order:
                    member = archive.extractfile(index[ids[i]])
                    assert member is not None  # the index holds regular files only
                    result[i] = member.read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{self.description}: cannot read images: {e}") from None
        return result

    def _read_file(self, image_id: str) -> bytes:
        path = os.path.join(self.description, image_id)
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


class MemoryImageStore:
    """Encoded image bytes by id, held in memory (images of a TFDS split).

    Offers what :class:`ImageStore` offers (``description``, ``in``, ``read``,
    ``read_many``, ``len``); ``is_tar`` is False.

    Args:
        description: where the images came from (``tfds:<name>``), for messages
            and the feature cache key.
        images: id -> encoded bytes (JPEG, PNG, ...).
    """

    is_tar = False

    def __init__(self, description: str, images: dict[str, bytes]):
        self.description = description
        self._images = dict(images)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._images

    def __len__(self) -> int:
        return len(self._images)

    def __repr__(self) -> str:
        return f"MemoryImageStore({self.description!r}, {len(self)} images)"

    def read(self, image_id: str) -> bytes:
        """The encoded bytes of one image.

        Raises:
            DataError: ``image_id`` is not in the store.
        """
        return self.read_many([image_id])[0]

    def read_many(self, ids: Sequence[str]) -> list[bytes]:
        """The encoded bytes of several images, in the order of ``ids``.

        Raises:
            DataError: an id is not in the store.
        """
        for image_id in ids:
            if image_id not in self._images:
                raise DataError(f"image {image_id!r} is not in {self.description}")
        return [self._images[image_id] for image_id in ids]
