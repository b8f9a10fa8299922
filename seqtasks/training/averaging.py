"""Checkpoint averaging: export the mean of the weights of the last N epochs ending at the best.

Averaging the parameters of the last checkpoints of a run smooths the noise of the final
steps of stochastic optimisation (Polyak & Juditsky 1992); Vaswani et al. 2017, sec. 6.1,
average the last 5 or 20 checkpoints of their Transformers, and OpenNMT
(``onmt.bin.average_models``) and fairseq (``scripts/average_checkpoints.py``) ship it. Here
the ``average_last`` epochs end at the epoch early stopping keeps (the best validation
loss), so a run that stopped late averages the epochs up to its best, not past it.

:class:`EpochSnapshots` writes each epoch's weights (without the optimizer state) to
``<run_dir>/averaging/epoch-<n>.weights.h5`` and removes those that can no longer be among
the last N before the best; :func:`average_snapshots` loads the chosen ones into the model.
"""

from __future__ import annotations

import logging
import os
import re

import keras
import numpy as np

log = logging.getLogger("seqtasks.training")

AVERAGING_DIR = "averaging"  # <run_dir>/averaging/epoch-<n>.weights.h5
_SNAPSHOT = re.compile(r"epoch-(\d+)\.weights\.h5$")


def snapshot_path(folder: str, epoch: int) -> str:
    """``<folder>/epoch-<epoch>.weights.h5`` (``epoch`` 1-based)."""
    return os.path.join(folder, f"epoch-{epoch}.weights.h5")


def saved_epochs(folder: str) -> list[int]:
    """The 1-based epochs with a snapshot in ``folder``, ascending."""
    if not os.path.isdir(folder):
        return []
    return sorted(int(m.group(1)) for f in os.listdir(folder) if (m := _SNAPSHOT.match(f)))


class EpochSnapshots(keras.callbacks.Callback):
    """Saves the model's weights after every epoch for :func:`average_snapshots`.

    A snapshot is written under a temporary name and renamed. After each epoch, the
    snapshots older than the ``count`` epochs ending at the best epoch so far (lowest
    ``monitor``) are removed: the best can only move later, so they are never needed.
    A resumed run finds the folder as it was after its last finished epoch.

    Args:
        folder: where the snapshots go (``<run_dir>/averaging``).
        count: int >= 2, the epochs to be averaged.
        monitor: the log key that marks the best epoch (default ``val_loss``).
        mode: ``"min"`` (default) or ``"max"``: which ``monitor`` value is best.
        history: earlier epochs' ``monitor`` values of a resumed run (default none).
    """

    def __init__(
        self, folder: str, count: int, monitor: str = "val_loss", mode: str = "min", history=None
    ):
        super().__init__()
        self.folder, self.count, self.monitor, self.mode = folder, count, monitor, mode
        self.values: list[float] = list(history or [])

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.folder, exist_ok=True)
        tmp = os.path.join(self.folder, f"tmp-{os.getpid()}.weights.h5")
        self.model.save_weights(tmp)
        os.replace(tmp, snapshot_path(self.folder, epoch + 1))
        value = (logs or {}).get(self.monitor)
        self.values = self.values[:epoch] + [np.nan if value is None else float(value)]
        best = best_of(self.values, self.mode) or epoch + 1
        for old in saved_epochs(self.folder):
            if old <= best - self.count:
                os.remove(snapshot_path(self.folder, old))


def best_of(values: list[float], mode: str = "min") -> int | None:
    """The 1-based epoch of the best of ``values`` (lowest for ``"min"``, highest for
    ``"max"``; the first on ties; missing values, NaN, never best), or None."""
    scored = [(v if mode == "min" else -v, i) for i, v in enumerate(values) if v == v]
    return min(scored)[1] + 1 if scored else None


def averaged_epochs(best_epoch: int, count: int, available: list[int]) -> list[int]:
    """The epochs ``best_epoch - count + 1 .. best_epoch`` that have a snapshot (fewer when
    the run is shorter than ``count`` epochs), ascending."""
    wanted = range(max(1, best_epoch - count + 1), best_epoch + 1)
    return [e for e in wanted if e in set(available)]


def average_snapshots(model, folder: str, epochs: list[int]) -> None:
    """Set every floating-point weight of ``model`` to its mean over the snapshots of
    ``epochs`` (float64 sums, cast back); other weights keep the last snapshot's values.

    Args:
        model: a built Keras model with the snapshots' structure.
        folder: the snapshot folder.
        epochs: 1-based epochs, each with ``snapshot_path(folder, epoch)``.

    Raises:
        ValueError: if ``epochs`` is empty.
    """
    if not epochs:
        raise ValueError("average_snapshots needs at least one epoch; Received: []")
    sums = None
    for epoch in epochs:
        model.load_weights(snapshot_path(folder, epoch))
        weights = model.get_weights()
        if sums is None:
            sums = [np.array(w, np.float64) for w in weights]
        else:
            for total, w in zip(sums, weights):
                total += w
    last = model.get_weights()
    model.set_weights(
        [
            (total / len(epochs)).astype(w.dtype) if np.issubdtype(w.dtype, np.floating) else w
            for total, w in zip(sums, last)
        ]
    )
    log.info("averaged the weights of epochs %s", ", ".join(map(str, epochs)))


def snapshot_callbacks(folder, count, monitor, mode, state, initial_epoch, is_chief) -> list:
    """``[EpochSnapshots]`` when ``count >= 2`` on the chief (the run directory's writer),
    else ``[]``; a resumed run's ``state`` (``state.json``) gives the earlier epochs'
    ``monitor`` values up to ``initial_epoch``."""
    if count < 2 or not is_chief:
        return []
    history = (state or {}).get("history", {}).get(monitor, [])[:initial_epoch]
    return [EpochSnapshots(folder, count, monitor=monitor, mode=mode, history=history)]


def average_best(model, folder, count, best_epoch, snapshots) -> list[int] | None:
    """Average into ``model`` the snapshots of the ``count`` epochs ending at
    ``best_epoch`` when ``snapshots`` (:func:`snapshot_callbacks`) ran; return those
    epochs, or None when nothing was averaged."""
    if not snapshots or not best_epoch:
        return None
    epochs = averaged_epochs(best_epoch, count, saved_epochs(folder))
    average_snapshots(model, folder, epochs)
    return epochs
