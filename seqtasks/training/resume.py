"""Resume state: everything a fresh process needs to continue a run after its last
finished epoch (``<run_dir>/resume/``), and the history truncation a resumed run needs."""

from __future__ import annotations

import csv
import logging
import os
import shutil

import keras
import numpy as np

from seqtasks.errors import ConfigError
from seqtasks.io import write_json_atomic

log = logging.getLogger(__name__)


RESUME_DIR = "resume"  # <run_dir>/resume/: state.json and epoch-<n>.weights.h5


def seed_generator_states(model) -> list:
    """The model's random-seed state variables (dropout masks), in a stable order.

    ``save_weights`` does not store them; a resumed run restores them so that
    its dropout masks continue the uninterrupted run's sequence.
    """
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights and "seed_generator" in v.path]


def _number(value):
    return None if value is None else float(value)


class ResumeState(keras.callbacks.Callback):
    """Saves after every epoch what a fresh process needs to continue; restores it.

    ``folder`` (``<run_dir>/resume``) holds ``epoch-<n>.weights.h5`` (model
    weights and optimizer state after epoch ``n``: the latest epoch's and the
    best epoch's, for early stopping's best weights) and ``state.json``: the
    number of finished epochs, whether training was stopped (early stopping),
    the weights file names, seed-generator states, the per-epoch history and
    seconds, and the state of the early-stopping, checkpoint and plateau
    callbacks. Every file is written under a temporary name and renamed, and
    ``state.json`` last, so a kill at any moment leaves the previous epoch's
    complete state.

    Put it last in the callback list: at an epoch's end it saves the other
    callbacks' updated state, and at the start of training (``state`` given)
    it overrides their reset with the saved state.

    Args:
        folder: where the state is written.
        timer, early_stopping, checkpoint: the run's :class:`EpochTimer`,
            ``EarlyStopping`` (with ``restore_best_weights``) and ``ModelCheckpoint``.
        plateau: the ``ReduceLROnPlateau`` callback, or None.
        state: a ``state.json`` to restore when training begins, or None.
        source: the folder ``state``'s weight files are read from (default:
            ``folder``; a multi-worker run's other workers read the chief's).
    """

    def __init__(
        self, folder, *, timer, early_stopping, checkpoint, plateau, state=None, source=None
    ):
        super().__init__()
        self.folder = folder
        self.source = source or folder
        self.timer = timer
        self.early_stopping = early_stopping
        self.checkpoint = checkpoint
        self.plateau = plateau
        self.state = state
        self.history: dict[str, list[float]] = {}  # every epoch's logs, earlier runs' included
        self._best_file: str | None = None

    def on_train_begin(self, logs=None):
        if self.state is not None:
            self._restore(self.state)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        os.makedirs(self.folder, exist_ok=True)
        name = f"epoch-{epoch + 1}.weights.h5"
        tmp = os.path.join(self.folder, f"tmp-{os.getpid()}.weights.h5")
        self.model.save_weights(tmp)
        os.replace(tmp, os.path.join(self.folder, name))
        es = self.early_stopping
        if es.best_weights is not None and es.best_epoch == epoch:
            self._best_file = name  # this epoch's weights are early stopping's best
        plateau = self.plateau
        state = {
            "epoch": epoch + 1,
            "stopped": bool(self.model.stop_training),
            "weights": name,
            "best_weights": self._best_file,
            "seed_generators": [
                np.asarray(v.numpy()).tolist() for v in seed_generator_states(self.model)
            ],
            "history": self.history,
            "epoch_seconds": list(self.timer.seconds),
            "early_stopping": {
                "best": _number(es.best),
                "best_epoch": int(es.best_epoch),
                "wait": int(es.wait),
                "stopped_epoch": int(es.stopped_epoch),
            },
            "checkpoint": {"best": _number(self.checkpoint.best)},
            "plateau": None
            if plateau is None
            else {
                "best": _number(plateau.best),
                "wait": int(plateau.wait),
                "cooldown_counter": int(plateau.cooldown_counter),
            },
        }
        write_json_atomic(os.path.join(self.folder, "state.json"), state)
        for other in os.listdir(self.folder):
            if other.endswith(".weights.h5") and other not in (name, self._best_file):
                os.remove(os.path.join(self.folder, other))

    def _restore(self, state):
        try:
            self._load(state)
        except (OSError, KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                f"config field 'run_dir': cannot resume {os.path.dirname(self.source)}: its "
                f"saved state is unreadable ({type(e).__name__}: {e}); use --no-resume or "
                "another --run-dir"
            ) from None

    def _load(self, state):
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # so its state can be loaded
        es = self.early_stopping
        best = state.get("best_weights")
        if best:
            model.load_weights(os.path.join(self.source, best))
            es.best_weights = model.get_weights()
            # ModelCheckpoint writes best.weights.h5 in place: a kill may have torn it.
            tmp = f"{self.checkpoint.filepath}.tmp-{os.getpid()}"
            shutil.copyfile(os.path.join(self.source, best), tmp)
            os.replace(tmp, self.checkpoint.filepath)
        model.load_weights(os.path.join(self.source, state["weights"]))
        seeds = seed_generator_states(model)
        if len(seeds) != len(state["seed_generators"]):
            raise ConfigError(
                f"config field 'run_dir': {os.path.dirname(self.source)}: the saved state does "
                "not fit this model; choose another --run-dir"
            )
        for variable, value in zip(seeds, state["seed_generators"]):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        saved = state["early_stopping"]
        es.best, es.best_epoch = saved["best"], saved["best_epoch"]
        es.wait, es.stopped_epoch = saved["wait"], saved["stopped_epoch"]
        self.checkpoint.best = state["checkpoint"]["best"]
        if self.plateau is not None and state.get("plateau"):
            saved = state["plateau"]
            self.plateau.best, self.plateau.wait = saved["best"], saved["wait"]
            self.plateau.cooldown_counter = saved["cooldown_counter"]
        self.timer.seconds = list(state["epoch_seconds"])
        self.history = {key: list(values) for key, values in state["history"].items()}
        self._best_file = best


def truncate_history(path: str, epochs: int) -> None:
    """Keep the header and the rows of the first ``epochs`` epochs of a CSVLogger file."""
    if not os.path.exists(path):
        return
    if epochs == 0:
        os.remove(path)
        return
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    keep = rows[:1] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) < epochs]
    with open(f"{path}.tmp-{os.getpid()}", "w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(keep)
    os.replace(f"{path}.tmp-{os.getpid()}", path)
