"""Training curves: ``curves.png`` of one run and ``plot-runs`` over several, drawn from
each run's ``history.csv`` (Keras' ``CSVLogger``: one row per finished epoch)."""

from __future__ import annotations

import os

import numpy as np

from seqtasks.plots import save_png

_NOT_METRICS = ("epoch", "learning_rate", "lr")


def _number(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def read_history(path: str) -> dict[str, np.ndarray]:
    """The columns of a Keras ``CSVLogger`` file (a run's ``history.csv``) as float arrays.

    ``epoch`` (0-based in the file) becomes 1-based, as training prints it; a cell
    that is not a number (``NA``) is NaN.

    Raises:
        OSError: the file cannot be read.
        ValueError: it has no ``epoch`` column or no rows (no epoch finished).
    """
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        rows = [row for row in csv.DictReader(f) if (row.get("epoch") or "").strip()]
    if not rows:
        raise ValueError(f"{path}: no finished epoch in it")
    columns = {key: np.array([_number(row[key]) for row in rows]) for key in rows[0]}
    columns["epoch"] = columns["epoch"] + 1
    return columns


def metric_names(*histories: dict[str, np.ndarray]) -> list[str]:
    """``loss`` first, then the other metrics of any of ``histories`` (``accuracy`` for
    ``accuracy`` and ``val_accuracy``); the learning rate is not a metric."""
    names = {k.removeprefix("val_") for h in histories for k in h if k not in _NOT_METRICS}
    return sorted(names, key=lambda name: (name != "loss", name))


def _draw_panels(names: list[str], path: str, draw, title: str | None = None) -> str:
    """One panel per metric name, three a row: ``draw(ax, name, colours)`` fills each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(len(names), 3)
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    try:
        for ax in axes.flat[len(names) :]:
            ax.set_visible(False)
        for ax, name in zip(axes.flat, names):
            draw(ax, name, colours)
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.legend(fontsize=7)
        if title:
            fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        return save_png(fig, path, dpi=100)
    finally:
        plt.close(fig)


def training_curves(
    history_csv: str, path: str, *, best_epoch: int | None = None, title: str | None = None
) -> str:
    """Write a PNG of a run's loss and metrics per epoch, training against validation.

    One panel per metric (``loss``, then the others alphabetically; the learning rate
    is left out), the training curve dashed and the validation curve solid, epochs
    1-based; ``best_epoch`` (the exported one) is marked with a vertical line.

    Args:
        history_csv: a run's ``history.csv`` (Keras ``CSVLogger``).
        path: the PNG to write (atomically, with the umask's permissions: :func:`save_png`).
        best_epoch: 1-based epoch to mark, or None.
        title: optional title (default: the history's folder).

    Returns:
        ``path``.

    Raises:
        OSError: ``history_csv`` cannot be read or ``path`` written.
        ValueError: the history has no finished epoch.
    """
    history = read_history(history_csv)
    epochs = history["epoch"]

    def draw(ax, name, colours):
        if name in history:
            ax.plot(epochs, history[name], "--o", markersize=3, label="training")
        if f"val_{name}" in history:
            ax.plot(epochs, history[f"val_{name}"], "-o", markersize=3, label="validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="gray", linestyle=":", label=f"exported: {best_epoch}")

    title = title or os.path.dirname(os.path.abspath(history_csv))
    return _draw_panels(metric_names(history), path, draw, title)


def compare_runs(
    histories: dict[str, str],
    path: str,
    *,
    metric: str | None = None,
    best_epochs: dict[str, int | None] | None = None,
) -> str:
    """Write a PNG overlaying several runs' curves: one colour per run, validation solid,
    training dashed, one panel per metric (or only ``metric``).

    Args:
        histories: label (e.g. the run folder) to its ``history.csv``.
        path: the PNG to write (atomically, with the umask's permissions).
        metric: one metric to draw (``loss``, ``accuracy``, ...; ``val_`` prefix
            optional), or None for every metric of any run, ``loss`` first.
        best_epochs: label to the run's exported (1-based) epoch, marked with a dot
            on its validation curve.

    Returns:
        ``path``.

    Raises:
        OSError: a history cannot be read or ``path`` written.
        ValueError: no histories, a history without a finished epoch, or
            ``metric`` in none of them (the message lists the ones there are).
    """
    if not histories:
        raise ValueError("no runs to draw")
    loaded = {label: read_history(csv_path) for label, csv_path in histories.items()}
    names = metric_names(*loaded.values())
    if metric is not None:
        if metric.removeprefix("val_") not in names:
            raise ValueError(f"no run has the metric {metric!r}; they have: {', '.join(names)}")
        names = [metric.removeprefix("val_")]

    def draw(ax, name, colours):
        for i, (label, history) in enumerate(loaded.items()):
            colour, epochs = colours[i % len(colours)], history["epoch"]
            if f"val_{name}" in history:
                values = history[f"val_{name}"]
                ax.plot(epochs, values, "-", color=colour, label=f"{label} validation")
                best = (best_epochs or {}).get(label)
                if best is not None and best in epochs:
                    ax.plot([best], [values[list(epochs).index(best)]], "o", color=colour)
            if name in history:
                style = {"color": colour, "alpha": 0.7, "label": f"{label} training"}
                ax.plot(epochs, history[name], "--", **style)

    return _draw_panels(names, path, draw)
