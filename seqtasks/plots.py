"""Pictures of models at work (matplotlib, no display needed)."""

from __future__ import annotations

import os
import tempfile

import numpy as np


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
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
