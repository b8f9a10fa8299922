"""Pictures of models at work (matplotlib, no display needed)."""

from __future__ import annotations

import os
import tempfile

import numpy as np


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def save_png(fig, path: str, dpi: float) -> str:
    """Write matplotlib figure ``fig`` to ``path`` as a PNG, atomically; return ``path``.

    A temporary file in the same folder (made with mode 0600 by ``mkstemp``) is given
    the mode a plain ``open`` would (``0o666`` less the process umask) and renamed, so
    readers find the old picture or the whole new one. Missing folders are created.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def attention_heatmap(
    weights: np.ndarray,
    source_tokens: list[str],
    target_tokens: list[str],
    path: str,
    title: str | None = None,
) -> str:
    """Write a PNG heatmap of cross-attention weights (rows: generated tokens; columns: source).

    Args:
        weights: float ``(len(target_tokens), len(source_tokens))``, each row a
            distribution over source tokens.
        source_tokens: column labels.
        target_tokens: row labels.
        path: the PNG to write (atomically: a temporary file, then rename).
        title: optional title (e.g. the source sentence and its translation).

    Returns:
        ``path``.

    Raises:
        ValueError: if the shapes of ``weights`` and the labels disagree.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype=np.float32)
    if weights.shape != (len(target_tokens), len(source_tokens)):
        raise ValueError(
            f"weights shape {weights.shape} does not match "
            f"{len(target_tokens)} target x {len(source_tokens)} source tokens"
        )
    width = max(4.0, 0.45 * len(source_tokens) + 2)
    height = max(3.0, 0.4 * len(target_tokens) + 1.5)
    fig, ax = plt.subplots(figsize=(width, height))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=90)
    ax.set_yticks(range(len(target_tokens)), target_tokens)
    ax.set_xlabel("source tokens")
    ax.set_ylabel("generated tokens")
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    try:
        save_png(fig, path, dpi=120)
    finally:
        plt.close(fig)
    return path


# caption_grid layout, in inches (the PNG is written at _GRID_DPI dots per inch).
_GRID_DPI = 100
_IMAGE_IN = 3.0  # width of an image with its caption
_WORD_IN = 1.4  # width of a per-word attention panel
_MAX_WORDS_PER_ROW = 12
_GAP_IN = 0.15
_CAPTION_PT = 9.0
_WORD_PT = 8.0
_MAX_PIXELS = 2**16 - 1  # Agg refuses larger pictures


def _wrap_lines(text: str, width_in: float, fontsize: float) -> list[str]:
    """``text`` wrapped to about ``width_in`` inches of ``fontsize`` points (never empty)."""
    import textwrap

    chars = max(8, int(width_in * 72 / (0.55 * fontsize)))
    return textwrap.wrap(text, chars, break_long_words=True) or [""]


def _check_caption_grid_args(
    images: list[np.ndarray],
    captions: list[str],
    columns: int,
    attention: list[tuple[list[str], np.ndarray]] | None,
) -> list[tuple[list[str], np.ndarray]] | None:
    if not len(images):
        raise ValueError("caption_grid needs at least one image")
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions (one per image)")
    if not isinstance(columns, int) or columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    for i, image in enumerate(images):
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise ValueError(
                f"images[{i}] must be a uint8 array (H, W, 3), got {image.dtype} {image.shape}"
            )
        if not isinstance(captions[i], str):
            raise ValueError(f"captions[{i}] must be a string, got {type(captions[i]).__name__}")
    if attention is None:
        return None
    if len(attention) != len(images):
        raise ValueError(
            f"{len(images)} images but {len(attention)} attention entries (one per image)"
        )
    checked = []
    for i, entry in enumerate(attention):
        if len(entry) != 2:
            raise ValueError(f"attention[{i}] must be a pair (words, maps)")
        words, maps = list(entry[0]), np.asarray(entry[1], dtype=np.float32)
        if maps.ndim != 3 or maps.shape[0] != len(words) or 0 in maps.shape[1:]:
            raise ValueError(
                f"attention[{i}] maps must be float (len(words), gh, gw) = "
                f"({len(words)}, gh, gw), got shape {maps.shape}"
            )
        if not np.all(np.isfinite(maps)):
            raise ValueError(f"attention[{i}] maps contain NaN or infinite values")
        checked.append(([str(w) for w in words], maps))
    return checked


def caption_grid(
    images: list[np.ndarray],
    captions: list[str],
    path: str,
    *,
    columns: int = 3,
    attention: list[tuple[list[str], np.ndarray]] | None = None,
    title: str | None = None,
) -> str:
    """Write a PNG of images with their captions, optionally with per-word attention maps.

    Without ``attention`` the images are laid out ``columns`` per row, each
    3 inches wide with its caption wrapped underneath. With ``attention``,
    each image gets its own row (``columns`` is ignored): the image and its
    caption, then one 1.4-inch panel per generated word -- the image with that
    word's attention map stretched over it (bilinear, ``alpha`` 0.6, each map
    scaled to its own maximum so weak maps stay visible) and the word as the
    panel's title; at most 12 panels per row, further words wrap to more rows.
    The PNG is written at 100 dpi, so its size in pixels is 100x the layout in
    inches. Text is drawn literally (no mathtext: "$" is just a dollar sign).

    Args:
        images: uint8 arrays ``(H, W, 3)``; sizes may differ.
        captions: one string per image.
        path: the PNG to write (atomically: a temporary file in the same
            folder, then rename).
        columns: images per row when there is no ``attention``.
        attention: ``attention[i] = (words, maps)`` for image ``i``, ``maps`` a
            float array ``(len(words), gh, gw)``: for each generated word, its
            attention over a ``gh x gw`` grid of image regions (row-major, top
            left first, as a CNN feature map).
        title: optional title above everything.

    Returns:
        ``path``.

    Raises:
        ValueError: if an image is not uint8 ``(H, W, 3)``, if the numbers of
            images, captions and attention entries differ, if a ``maps`` array
            is not ``(len(words), gh, gw)`` or has non-finite values, if
            ``columns`` < 1, or if the picture would exceed 65535 pixels a side.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attention = _check_caption_grid_args(images, captions, columns, attention)
    images = [np.asarray(image) for image in images]
    line_in = _CAPTION_PT * 1.35 / 72
    word_title_in = _WORD_PT * 1.6 / 72

    # Cells: (x, y, w, h, kind, payload) in inches from the top left of the figure.
    cells: list[tuple[float, float, float, float, str, object]] = []
    top = _GAP_IN
    width = 0.0

    def image_cell(x: float, y: float, i: int) -> float:
        """Place image ``i`` and its caption at (x, y); return the height used."""
        h_img = _IMAGE_IN * min(2.0, images[i].shape[0] / images[i].shape[1])
        cells.append((x, y, _IMAGE_IN, h_img, "image", i))
        lines = _wrap_lines(captions[i], _IMAGE_IN, _CAPTION_PT)
        cells.append((x, y + h_img + 0.05, _IMAGE_IN, len(lines) * line_in, "caption", lines))
        return h_img + 0.05 + len(lines) * line_in

    if attention is None:
        for start in range(0, len(images), columns):
            row_height = 0.0
            for c, i in enumerate(range(start, min(start + columns, len(images)))):
                x = _GAP_IN + c * (_IMAGE_IN + _GAP_IN)
                row_height = max(row_height, image_cell(x, top, i))
                width = max(width, x + _IMAGE_IN + _GAP_IN)
            top += row_height + 2 * _GAP_IN
    else:
        for i, (words, maps) in enumerate(attention):
            used = image_cell(_GAP_IN, top, i)
            width = max(width, _IMAGE_IN + 2 * _GAP_IN)
            h, w = images[i].shape[:2]
            panel_h = _WORD_IN * min(2.0, h / w)
            left = _GAP_IN + _IMAGE_IN + 2 * _GAP_IN
            panels_top = top
            for k, word in enumerate(words):
                r, c = divmod(k, _MAX_WORDS_PER_ROW)
                x = left + c * (_WORD_IN + _GAP_IN / 2)
                y = top + r * (panel_h + word_title_in + _GAP_IN / 2) + word_title_in
                cells.append((x, y, _WORD_IN, panel_h, "word", (i, word, maps[k])))
                width = max(width, x + _WORD_IN + _GAP_IN)
                panels_top = max(panels_top, y + panel_h)
            top = max(top + used, panels_top) + 2 * _GAP_IN
    title_lines: list[str] = []
    if title:
        title_lines = _wrap_lines(title, width - 2 * _GAP_IN, _CAPTION_PT + 2)
        shift = len(title_lines) * (_CAPTION_PT + 2) * 1.35 / 72 + _GAP_IN
        cells = [(x, y + shift, w, h, kind, payload) for x, y, w, h, kind, payload in cells]
        top += shift
    height = top - _GAP_IN
    if max(width, height) * _GRID_DPI > _MAX_PIXELS:
        raise ValueError(
            f"the picture would be {width * _GRID_DPI:.0f} x {height * _GRID_DPI:.0f} pixels "
            f"(at most {_MAX_PIXELS} a side): draw fewer images or words per call"
        )

    fig = plt.figure(figsize=(width, height), dpi=_GRID_DPI)
    try:
        if title_lines:
            fig.text(
                0.5,
                1 - _GAP_IN / height,
                "\n".join(title_lines),
                ha="center",
                va="top",
                fontsize=_CAPTION_PT + 2,
                parse_math=False,
            )
        for x, y, w, h, kind, payload in cells:
            if kind == "caption":
                fig.text(
                    x / width,
                    1 - y / height,
                    "\n".join(payload),
                    ha="left",
                    va="top",
                    fontsize=_CAPTION_PT,
                    parse_math=False,
                )
                continue
            ax = fig.add_axes((x / width, 1 - (y + h) / height, w / width, h / height))
            ax.set_axis_off()
            if kind == "image":
                ax.imshow(images[payload])
                continue
            i, word, weights = payload
            image_h, image_w = images[i].shape[:2]
            ax.imshow(images[i])
            ax.imshow(
                weights,
                cmap="jet",
                alpha=0.6,
                vmin=0.0,
                vmax=max(float(weights.max()), 1e-12),
                interpolation="bilinear",
                extent=(-0.5, image_w - 0.5, image_h - 0.5, -0.5),
            )
            ax.set_title(word, fontsize=_WORD_PT, pad=2, parse_math=False)
        save_png(fig, path, dpi=_GRID_DPI)
    finally:
        plt.close(fig)
    return path


# Columns of a Keras CSVLogger history that are not metrics.
