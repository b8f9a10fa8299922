"""caption_grid: PNGs of images with captions and per-word attention panels."""

from __future__ import annotations

import os

import numpy as np
import pytest

from seqtasks.plots import caption_grid

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _images(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _read_png(path: str) -> np.ndarray:
    import matplotlib.image

    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    return matplotlib.image.imread(path)


def test_grid_without_attention(tmp_path):
    path = str(tmp_path / "out" / "grid.png")
    captions = ["a dog runs on the grass", "a very long caption " * 6, "costs $5 and $6"]
    assert caption_grid(_images(3), captions, path, columns=2, title="Samples") == path
    pixels = _read_png(path)
    # 2 columns of 3-inch cells at 100 dpi: 0.15 + 2 * (3.0 + 0.15) inches wide
    assert pixels.shape[1] == 645
    assert pixels.shape[0] > 400  # two rows of 2.25-inch images plus captions
    assert os.listdir(tmp_path / "out") == ["grid.png"]


def test_grid_with_attention_wraps_words(tmp_path):
    path = str(tmp_path / "att.png")
    rng = np.random.default_rng(1)
    words_0 = "a child in a pink dress is climbing up a set of stairs".split()  # 13: two rows
    attention = [
        (words_0, rng.random((len(words_0), 7, 7))),
        (["two", "dogs"], rng.random((2, 3, 5)).astype(np.float32)),
    ]
    captions = [" ".join(words_0), "two dogs"]
    caption_grid(_images(2), captions, path, attention=attention)
    pixels = _read_png(path)
    # image column + 12 panels of 1.4 inches: about 21 inches at 100 dpi
    assert 2000 < pixels.shape[1] < 2300
    assert pixels.shape[0] > 300
    # overwriting works and leaves no temporary file behind
    caption_grid(_images(2), captions, path, attention=attention, title="attention")
    assert os.listdir(tmp_path) == ["att.png"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"captions": ["only one"]}, "2 images but 1 captions"),
        ({"images": [np.zeros((8, 8), np.uint8)] * 2}, r"uint8 array \(H, W, 3\)"),
        ({"images": [np.zeros((8, 8, 3), np.float32)] * 2}, r"uint8 array \(H, W, 3\)"),
        ({"columns": 0}, "columns must be a positive integer"),
        ({"attention": [(["a"], np.ones((1, 2, 2)))]}, "2 images but 1 attention entries"),
        (
            {"attention": [(["a", "dog"], np.ones((3, 2, 2))), (["b"], np.ones((1, 2, 2)))]},
            r"attention\[0\] maps must be",
        ),
        (
            {"attention": [(["a"], np.ones((1, 2, 2))), (["b"], np.ones((1, 4)))]},
            r"attention\[1\] maps must be",
        ),
        (
            {"attention": [(["a"], np.full((1, 2, 2), np.nan)), (["b"], np.ones((1, 2, 2)))]},
            "NaN",
        ),
    ],
)
def test_bad_arguments_raise(tmp_path, kwargs, message):
    args = {"images": _images(2), "captions": ["a", "b"], "path": str(tmp_path / "x.png")}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        caption_grid(**args)
    assert os.listdir(tmp_path) == []


def test_too_large_picture_raises(tmp_path):
    images = _images(300, 8, 8)
    with pytest.raises(ValueError, match="at most 65535"):
        caption_grid(images, ["x"] * 300, str(tmp_path / "x.png"), columns=1)
    assert os.listdir(tmp_path) == []
