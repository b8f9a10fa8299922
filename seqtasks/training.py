"""The training driver: runs a recipe's steps with the shared fit wiring.

:func:`train` seeds everything, creates the run directory, calls the recipe's
steps (see :mod:`seqtasks.recipe`) and trains with Keras ``fit``:

- a progress bar (one line per epoch when stdout is not a terminal);
- validation after every epoch;
- the learning rate multiplied by ``config.reduce_lr_factor`` after each epoch
  whose validation loss is not the best so far (unless the recipe's optimizer
  follows a learning-rate schedule, e.g. the Transformer's warm-up);
- early stopping on validation loss (``config.patience``), restoring the best
  weights at the end;
- the best weights checkpointed to ``<run_dir>/best.weights.h5``;
- TensorBoard logs in ``<run_dir>/logs`` and per-epoch history in
  ``<run_dir>/history.csv``;
- ``config.json`` (written first) and ``metrics.json`` (validation metrics,
  seconds per epoch, peak memory; written last, after the export, so it marks a
  finished run) in the run directory;
- after every epoch, everything needed to continue in a fresh process in
  ``<run_dir>/resume/`` (see :class:`ResumeState`).

Resume: a run directory with ``config.json`` but no ``metrics.json`` is an
unfinished run (killed, or interrupted with Ctrl-C). Training the same recipe
with the same config and the same data again continues it at the epoch after
its last finished one, instead of starting over: with ``run_dir`` set, in that
folder; without, in the newest matching unfinished run under ``runs/``
(``resume=False`` starts a fresh run instead). Model weights, optimizer state
(learning rate included), dropout seed states, the early-stopping,
checkpoint and learning-rate-plateau counters, per-epoch history and timings
are restored, and the training pipelines shuffle by epoch number
(:func:`seqtasks.data.pipeline.shuffle_each_epoch`), so on CPU the resumed run
ends with the same weights and metrics as an uninterrupted one. A run in use
by another process is locked (``<run_dir>/.lock``) and never resumed twice.
Fine-tuning runs (:func:`finetune`) resume the same way, matched also on
the source version and the frozen layers.

Exports need the TensorFlow backend. Under another ``KERAS_BACKEND`` (JAX,
PyTorch) training runs the same way and the trained model is saved as
``<run_dir>/model.keras`` instead of an export.

On CPU the same seed gives the same result: Python, NumPy and backend seeds
are set with ``keras.utils.set_random_seed`` and TensorFlow op determinism is
enabled.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from typing import Any

import keras
import numpy as np

from seqtasks import distribute
from seqtasks.config import TrainConfig
from seqtasks.errors import ConfigError, DataError, UserError
from seqtasks.fingerprint import fingerprint
from seqtasks.io import check_output_dir, write_json_atomic
from seqtasks.precision import follow_global_policy, precision_policy
from seqtasks.recipe import Recipe
from seqtasks.versions import package_versions

log = logging.getLogger(__name__)

RESUME_DIR = "resume"  # <run_dir>/resume/: state.json and epoch-<n>.weights.h5


@dataclasses.dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: str | None  # None on a multi-worker run's workers other than the chief
    export_path: str | None  # None when the backend cannot write SavedModels, or not the chief
    metrics: dict[str, Any]
    model: Any = None  # the trained keras.Model (best weights)
    prepared: Any = None  # the recipe's Prepared (vectorizer, datasets, labels)


class EpochTimer(keras.callbacks.Callback):
    """Records wall-clock seconds of every epoch in ``self.seconds``."""

    def on_train_begin(self, logs=None):
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class TimeLimit(keras.callbacks.Callback):
    """Stops training after the epoch that crosses ``minutes`` (None: no limit).

    The best weights so far are kept by the usual early-stopping restore.
    Used by the benchmarks' ``--max-minutes``.
    """

    def __init__(self, minutes: float | None):
        super().__init__()
        self.minutes = minutes

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.minutes and time.perf_counter() - self.start > 60 * self.minutes:
            log.warning("time limit of %s minutes reached", self.minutes)
            self.model.stop_training = True


class DataEpoch(keras.callbacks.Callback):
    """Sets the pipelines' epoch number (see ``shuffle_each_epoch``) when an epoch begins."""

    def __init__(self, variable):
        super().__init__()
        self.variable = variable

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(epoch)


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


def writes_savedmodels() -> bool:
    """Whether the Keras backend can write a TensorFlow SavedModel: only TensorFlow's can;
    on JAX or PyTorch, :func:`train` keeps ``<run_dir>/model.keras`` instead."""
    return keras.backend.backend() == "tensorflow"


# TensorFlow's global seed when --seed is 0 (see seed_everything).
_GLOBAL_SEED_FOR_ZERO = 2**31 - 2  # nonzero modulo 2**31 - 1, as TensorFlow truncates it


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow ops deterministic.

    ``deterministic=False`` (config ``jit_compile=true``) leaves TensorFlow's op
    determinism off: under it Keras never compiles with XLA.
    """
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if seed == 0:
            # TensorFlow cannot seed an op from a tensor (the per-epoch tf.data shuffle,
            # seqtasks.data.pipeline) under the global seed 0: random_seed.get_seed tests
            # ``(0, op_seed) == (0, 0)`` in Python. Seed 0 gets another global seed;
            # Keras' initialisers and dropout keep Keras' own seed 0.
            tf.random.set_seed(_GLOBAL_SEED_FOR_ZERO)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        else:
            # No public API turns it off again (Keras reads this module too).
            from tensorflow.python.framework import config as tf_config

            tf_config.disable_op_determinism()
            log.warning(
                "config field 'jit_compile'=true turns TensorFlow's op determinism off "
                "(Keras runs no XLA under it): runs are not bit-for-bit reproducible"
            )


def default_run_dir(recipe_name: str) -> str:
    """``runs/<recipe>-<YYYYmmdd-HHMMSS>`` for the current local time (``-2``, ... if taken)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base = os.path.join("runs", f"{recipe_name}-{stamp}")
    suffix = 1
    while os.path.exists(path):
        suffix += 1
        path = f"{base}-{suffix}"
    return path


def check_split_size(n: int, where: str) -> None:
    """Check that ``n`` examples leave at least one for training and one for validation.

    Raises:
        DataError: if they do not (too few examples).
    """
    if n < 2:
        raise DataError(
            f"{where}: {n} example(s); training needs at least 2 (one is held out for validation)"
        )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux: ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reduce_lr_on_plateau(model, config: TrainConfig):
    """``ReduceLROnPlateau`` by ``config.reduce_lr_factor``, or None.

    None when the factor is 1, or when the compiled optimizer follows a
    ``LearningRateSchedule`` (Keras cannot set the rate of a scheduled
    optimizer; the schedule owns it).
    """
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)  # loss scaling
    scheduled = isinstance(
        getattr(optimizer, "_learning_rate", None),
        keras.optimizers.schedules.LearningRateSchedule,
    )
    if config.reduce_lr_factor >= 1 or scheduled:
        return None
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=config.reduce_lr_factor, patience=0, min_lr=1e-6
    )


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_unfinished(run_dir: str) -> bool:
    """Whether ``run_dir`` holds a run that started (``config.json``) but did not finish."""
    return os.path.isfile(os.path.join(run_dir, "config.json")) and not os.path.exists(
        os.path.join(run_dir, "metrics.json")
    )


def run_differences(
    run_dir: str,
    recipe_name: str,
    config: dict,
    data: dict | None = None,
    finetune: dict | None = None,
) -> list[str]:
    """What differs between the run in ``run_dir`` and this one, one ``field: there, here`` each.

    Compares the recipe, every config field but ``run_dir`` and, when ``data``
    (a fingerprint with the example count) is given, the data's path, size,
    hash and number of examples; for a fine-tuning run, every entry of
    ``finetune`` (source version, ``freeze``, ``new_head``) with the run's
    ``finetune`` record. Empty when the run can be resumed.
    """
    record = _read_json(os.path.join(run_dir, "config.json"))
    if not isinstance(record, dict):
        return ["config.json: unreadable"]
    diffs = []
    if record.get("recipe") != recipe_name:
        diffs.append(f"recipe: {record.get('recipe')!r} there, {recipe_name!r} here")
    saved = record.get("config") if isinstance(record.get("config"), dict) else {}
    for key in sorted((set(saved) | set(config)) - {"run_dir"}):
        if saved.get(key) != config.get(key):
            diffs.append(f"{key}: {saved.get(key)!r} there, {config.get(key)!r} here")
    if data is not None:
        saved = record.get("data") if isinstance(record.get("data"), dict) else {}
        for key in ("path", "bytes", "sha256", "examples"):
            there, here = saved.get(key), data.get(key)
            if there != here:
                if key == "sha256":
                    there, here = str(there)[:12] + "…", str(here)[:12] + "…"
                diffs.append(f"data {key}: {there!r} there, {here!r} here")
    if finetune is not None:
        saved = record.get("finetune") if isinstance(record.get("finetune"), dict) else {}
        for key, here in finetune.items():
            if saved.get(key) != here:
                diffs.append(f"{key}: {saved.get(key)!r} there, {here!r} here")
    return diffs


def unfinished_runs(recipe_name: str, root: str = "runs") -> list[str]:
    """Unfinished runs of ``recipe_name`` under ``root`` (default run dirs), newest first."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    runs = [
        os.path.join(root, name)
        for name in names
        if name.startswith(f"{recipe_name}-") and is_unfinished(os.path.join(root, name))
    ]

    def last_written(run_dir):
        state = os.path.join(run_dir, RESUME_DIR, "state.json")
        path = state if os.path.exists(state) else os.path.join(run_dir, "config.json")
        return os.path.getmtime(path)

    return sorted(runs, key=last_written, reverse=True)


def lock_run(run_dir: str):
    """An exclusive lock on ``run_dir`` (``<run_dir>/.lock``) held until closed, or None if taken.

    The lock belongs to the open file: it goes when the process ends, even by ``kill -9``.
    """
    try:
        import fcntl
    except ImportError:  # no flock (Windows): no protection against a second process
        return open(os.path.join(run_dir, ".lock"), "a")
    handle = open(os.path.join(run_dir, ".lock"), "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


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


def _mismatch(run_dir: str, diffs: list[str]) -> ConfigError:
    return ConfigError(
        f"config field 'run_dir': {run_dir} holds an unfinished run with other settings "
        f"({'; '.join(diffs)}); repeat them to resume it, or choose another --run-dir"
    )


def _in_use(run_dir: str) -> ConfigError:
    return ConfigError(f"config field 'run_dir': {run_dir} is in use by another training process")


def _check_run_dir(explicit: str, name: str, config_dict: dict, resume: bool) -> None:
    """Before the data is read: an explicit run dir must be empty or an unfinished run like this.

    Raises:
        ConfigError: a finished run (or any run with ``resume`` off), or other settings.
    """
    if not explicit or not os.path.exists(os.path.join(explicit, "config.json")):
        return
    if not resume or not is_unfinished(explicit):
        raise ConfigError(
            f"config field 'run_dir': {explicit} already holds a run; choose another --run-dir"
        )
    diffs = run_differences(explicit, name, config_dict)
    if diffs:
        raise _mismatch(explicit, diffs)


def _load_data(recipe: Recipe, config: TrainConfig):
    """The recipe's data and its fingerprint (path, size, hash, examples, skipped bad rows)."""
    data = recipe.load_data(config)
    check_split_size(len(data), config.data)
    data_fingerprint = {**fingerprint(config.data), "examples": len(data)}
    if getattr(data, "skipped_bad_rows", None) is not None:  # --on-bad-rows skip
        data_fingerprint["skipped_bad_rows"] = data.skipped_bad_rows
    return data, data_fingerprint


def _choose_run_dir(
    explicit: str,
    name: str,
    config_dict: dict,
    data_fingerprint: dict,
    resume: bool,
    finetune: dict | None = None,
):
    """``(run_dir, lock, continuing)``: the explicit run dir (locked, if it holds a run
    like this one), else with ``resume`` the newest matching unfinished run under
    ``runs/``, else a new ``runs/<name>-<time>``.

    Raises:
        ConfigError: the explicit run's data or source differ, or another process holds it.
    """
    if explicit and os.path.exists(os.path.join(explicit, "config.json")):
        diffs = run_differences(explicit, name, config_dict, data_fingerprint, finetune)
        if diffs:
            raise _mismatch(explicit, diffs)
        lock = lock_run(explicit)
        if lock is None:
            raise _in_use(explicit)
        return explicit, lock, True
    if not explicit and resume:
        for candidate in unfinished_runs(name):
            if not run_differences(candidate, name, config_dict, data_fingerprint, finetune):
                lock = lock_run(candidate)
                if lock is not None:
                    return candidate, lock, True
    return explicit or default_run_dir(name), None, False


def train(
    recipe: Recipe,
    config: TrainConfig,
    verbose: int | None = None,
    callbacks: list | None = None,
    resume: bool = True,
    strategy: str = "auto",
) -> TrainResult:
    """Train ``recipe`` with ``config``, evaluate on validation data and export.

    An unfinished run with the same recipe, config and data is resumed (see
    the module docstring): the one in ``config.run_dir`` when set, else the
    newest under ``runs/``.

    Args:
        recipe: the task recipe.
        config: a validated config of ``recipe.config_class``.
        verbose: Keras ``fit`` verbosity; default: a progress bar on a terminal,
            one line per epoch otherwise.
        callbacks: extra Keras callbacks for ``fit`` (e.g. a time limit in benchmarks).
        resume: False to start a fresh run even when a matching unfinished one
            exists (an explicit ``run_dir`` that holds a run is then refused).
        strategy: ``auto``, ``one-device``, ``mirrored`` or ``multi-worker``
            (see :mod:`seqtasks.distribute`). A ``multi-worker`` run resumes
            only from an explicit ``config.run_dir`` that every worker sees;
            only its chief (worker 0) writes the run directory and the export,
            the other workers return ``run_dir`` and ``export_path`` None.

    Returns:
        :class:`TrainResult` with the run directory, the export version folder
        and the validation metrics.

    Raises:
        UserError: for bad data or config (raised by the recipe's steps); a
            ``ConfigError`` when ``config.run_dir`` holds a finished run, an
            unfinished run with other settings or data (naming the differing
            fields), or a run another process is training.
    """
    config = config.validate()
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs any op.
    distribution = distribute.choose(strategy)
    if distribution.workers > 1 and resume and not config.run_dir:
        # Every worker must restore the same state: the chief's, in a folder they all see.
        log.info("multi-worker runs resume only from an explicit --run-dir; starting fresh")
        resume = False
    check_output_dir(config.export_dir, "export_dir")
    check_output_dir(config.run_dir or "runs", "run_dir")
    config_dict = json.loads(json.dumps(config.to_dict(), default=str))
    _check_run_dir(config.run_dir, recipe.name, config_dict, resume)
    seed_everything(config.seed, deterministic=config.jit_compile != "true")
    start = time.perf_counter()
    # Everything that can fail on bad data happens before anything is written.
    data, data_fingerprint = _load_data(recipe, config)
    resume_from, temporary = None, None
    if distribution.is_chief:
        run_dir, lock, continuing = _choose_run_dir(
            config.run_dir, recipe.name, config_dict, data_fingerprint, resume
        )
    else:
        # TensorFlow's convention: workers other than the chief write to a temporary
        # folder. They resume (read-only) the chief's unfinished run in the shared --run-dir.
        explicit = config.run_dir
        lock, verbose = None, 0
        continuing = bool(
            resume
            and is_unfinished(explicit)
            and not run_differences(explicit, recipe.name, config_dict, data_fingerprint)
        )
        resume_from = explicit if continuing else None
        run_dir = temporary = tempfile.mkdtemp(
            prefix=f"seqtasks-worker-{distribution.worker_index}-"
        )
    try:
        return _train_locked(
            recipe,
            config,
            run_dir,
            data,
            data_fingerprint,
            lock=lock,
            continuing=continuing,
            resume_from=resume_from,
            verbose=verbose,
            callbacks=callbacks,
            start=start,
            distribution=distribution,
        )
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)


def _train_locked(recipe, config, run_dir: str, data, data_fingerprint: dict, *, lock, **kwargs):
    """Create ``run_dir`` if needed, hold its lock (``lock`` if already held) and train in it."""
    created_run_dir = not os.path.exists(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    if lock is None:
        lock = lock_run(run_dir)
        if lock is None:
            raise _in_use(run_dir)
    try:
        return _train_in(
            recipe,
            config,
            run_dir,
            data,
            data_fingerprint,
            created_run_dir=created_run_dir,
            **kwargs,
        )
    finally:
        lock.close()


def _train_in(
    recipe: Recipe,
    config: TrainConfig,
    run_dir: str,
    data,
    data_fingerprint: dict,
    *,
    continuing: bool,
    created_run_dir: bool,
    verbose: int | None,
    callbacks: list | None,
    start: float,
    prepare=None,
    build_model=None,
    record: dict | None = None,
    distribution: distribute.Distribution | None = None,
    resume_from: str | None = None,
) -> TrainResult:
    """:func:`train`'s steps in the chosen (and locked) run directory.

    ``prepare(run_dir)`` and ``build_model(prepared)`` replace the recipe's
    steps when given (fine-tuning: the source model's vocabulary and weights);
    ``record`` replaces or adds ``config.json`` entries (e.g. ``recipe``).
    ``distribution``: the strategy to train under (default: none);
    ``resume_from``: the run whose saved state a continuing run restores
    (default: ``run_dir``).
    """
    from seqtasks.data.pipeline import data_epoch

    distribution = distribution or distribute.Distribution("none")

    state = None
    if continuing:
        state = _read_json(os.path.join(resume_from or run_dir, RESUME_DIR, "state.json"))
        done = state["epoch"] if state else 0
        if state and (state["stopped"] or done >= config.epochs):
            log.info(
                "resuming %s after training (%d epochs done): evaluating and exporting",
                resume_from or run_dir,
                done,
            )
        else:
            log.info(
                "resuming %s at epoch %d of %d", resume_from or run_dir, done + 1, config.epochs
            )
    else:
        write_json_atomic(
            os.path.join(run_dir, "config.json"),
            {
                "recipe": recipe.name,
                "config": config.to_dict(),
                "data": data_fingerprint,
                "versions": package_versions(),
                "distribution": distribution.describe(),
                **(record or {}),
            },
        )
        log.info("run directory %s", run_dir)
    data_epoch().assign(0)
    try:
        if prepare is not None:
            prepared = prepare(run_dir)
        else:
            prepared = recipe.prepare(config, data, run_dir)
    except UserError:
        if created_run_dir:  # a data/config problem found late: leave nothing behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    log.info("prepared data in %.1f s", time.perf_counter() - start)

    with distribution.scope():
        with precision_policy(config.mixed_precision):
            if build_model is not None:  # fine-tuning: a loaded model takes the policy too
                model = follow_global_policy(build_model(prepared))
            else:
                model = recipe.build_model(config, prepared)
        recipe.compile_model(model, config)
    timer = EpochTimer()
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    checkpoint = keras.callbacks.ModelCheckpoint(
        os.path.join(run_dir, "best.weights.h5"),
        monitor="val_loss",
        save_best_only=True,
        save_weights_only=True,
    )
    plateau = reduce_lr_on_plateau(model, config)
    history_path = os.path.join(run_dir, "history.csv")
    initial_epoch = 0
    if continuing:
        initial_epoch = 0 if state is None else state["epoch"]
        truncate_history(history_path, initial_epoch)  # drop rows of an epoch redone now
        if state is not None and state["stopped"]:
            initial_epoch = max(initial_epoch, config.epochs)
    resume_state = ResumeState(
        os.path.join(run_dir, RESUME_DIR),
        timer=timer,
        early_stopping=early_stopping,
        checkpoint=checkpoint,
        plateau=plateau,
        state=state,
        source=os.path.join(resume_from or run_dir, RESUME_DIR),
    )
    callbacks = [
        DataEpoch(data_epoch()),
        timer,
        early_stopping,
        checkpoint,
        keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, "logs")),
        keras.callbacks.CSVLogger(history_path, append=initial_epoch > 0),
        *(callbacks or []),
        *([plateau] if plateau is not None else []),
        resume_state,  # last: saves the others' state after they update it
    ]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if not model.built and state is not None:
        raise ConfigError(f"config field 'run_dir': {run_dir}: cannot resume an unbuilt model")
    with warnings.catch_warnings():
        # Length-bucketed datasets have unknown cardinality; Keras warns once per run.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        if distribution.workers > 1:  # Keras fit fails here (keras-team/keras#20585)
            distribute.distributed_fit(
                model,
                distribution,
                prepared.train,
                prepared.validation,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                verbose=verbose,
            )
        else:
            model.fit(
                prepared.train,
                validation_data=prepared.validation,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                callbacks=callbacks,
                verbose=verbose,
                shuffle=False,  # the tf.data pipeline shuffles (seeded by epoch)
            )
        if distribution.strategy is not None:
            # Evaluate and export a single-device copy: no collective runs on one worker alone.
            trained = model
            with precision_policy(config.mixed_precision):
                model = recipe.build_model(config, prepared)
            recipe.compile_model(model, config)
            model.set_weights(trained.get_weights())
        if not distribution.is_chief:
            # Its run dir is a temporary folder, removed by `train`.
            metrics = {"distribution": distribution.describe()}
            return TrainResult(None, None, metrics, model=model, prepared=prepared)
        metrics = recipe.evaluate(model, prepared)
    val_losses = resume_state.history.get("val_loss", [])
    metrics.update(
        {
            "epochs_run": len(timer.seconds),
            "best_epoch": int(min(range(len(val_losses)), key=val_losses.__getitem__)) + 1
            if val_losses
            else None,
            "seconds_per_epoch": [round(s, 2) for s in timer.seconds],
            "train_seconds": round(sum(timer.seconds), 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "distribution": distribution.describe(),
        }
    )
    if not writes_savedmodels():
        # SavedModels need the TensorFlow backend; keep the trained model instead of losing it.
        path = os.path.join(run_dir, "model.keras")
        model.save(path)
        log.warning(
            "KERAS_BACKEND=%s cannot write a TensorFlow SavedModel; the trained model is in %s",
            keras.backend.backend(),
            path,
        )
        export_path = None
    else:
        export_path = recipe.export(
            model,
            prepared,
            config,
            {
                "metrics": metrics,
                "run_dir": os.path.abspath(run_dir),
                "data": {**data_fingerprint, **prepared.metadata.get("data", {})},
            },
        )
    # metrics.json marks the run finished: written once the export is complete.
    write_json_atomic(os.path.join(run_dir, "metrics.json"), metrics)
    shutil.rmtree(os.path.join(run_dir, RESUME_DIR), ignore_errors=True)
    return TrainResult(run_dir, export_path, metrics, model=model, prepared=prepared)


def finetune(
    recipe: Recipe,
    config: TrainConfig,
    version_dir: str,
    metadata: dict,
    *,
    new_head: bool = False,
    freeze: str = "none",
    verbose: int | None = None,
    callbacks: list | None = None,
    resume: bool = True,
) -> TrainResult:
    """Continue training the export in ``version_dir`` on ``config.data``; export the next version.

    The recipe's :meth:`~seqtasks.recipe.Recipe.plan_finetune` loads the
    export's model and vocabulary and checks the new data against them
    (labels, language pair, out-of-vocabulary share) before anything is
    written; training then follows :func:`train`'s conventions (seeded
    validation split, early stopping, checkpoints, run directory, metrics)
    and the new version lands in ``config.export_dir`` with
    ``finetuned_from`` in its metadata.

    Resume works as for :func:`train`: default run dirs are
    ``runs/<recipe>-finetune-<time>``, and an unfinished fine-tuning run
    with the same config, data, source version, ``freeze`` and ``new_head``
    is continued (``config.run_dir``'s, else the newest under ``runs/``)
    at the epoch after its last finished one; ``resume=False`` starts a
    fresh run (an explicit ``run_dir`` that holds a run is then refused).
    ``train`` never resumes a fine-tuning run, nor the other way round (the
    run's recipe is ``<recipe>-finetune``).

    Args:
        recipe: the export's recipe.
        config: the fine-tuning config (the export's, with the new data,
            epochs, learning rate, export and run dirs).
        version_dir, metadata: the source export version and its metadata.
        new_head: replace the classification head with a fresh one for the
            new data's labels (sentiment).
        freeze: ``encoder``, ``embeddings`` or ``none``: layers kept fixed.
        verbose, callbacks: as for :func:`train`.
        resume: False to start a fresh run even when a matching unfinished one exists.

    Raises:
        UserError: for bad data, labels the model does not know (without
            ``new_head``), another language pair, an export the recipe cannot
            fine-tune; a ``ConfigError`` for a run dir that holds a finished
            run, an unfinished run with other settings, or one in use.
    """
    config = config.validate()
    check_output_dir(config.export_dir, "export_dir")
    check_output_dir(config.run_dir or "runs", "run_dir")
    name = f"{recipe.name}-finetune"
    config_dict = json.loads(json.dumps(config.to_dict(), default=str))
    _check_run_dir(config.run_dir, name, config_dict, resume)
    seed_everything(config.seed, deterministic=config.jit_compile != "true")
    start = time.perf_counter()
    # Everything that can fail on bad data or labels happens before anything is written.
    data, data_fingerprint = _load_data(recipe, config)
    plan = recipe.plan_finetune(
        config, data, version_dir, metadata, new_head=new_head, freeze=freeze
    )
    source = {
        "finetuned_from": plan.metadata["finetuned_from"],
        "freeze": plan.metadata["freeze"],
        "new_head": plan.metadata["new_head"],
    }
    run_dir, lock, continuing = _choose_run_dir(
        config.run_dir, name, config_dict, data_fingerprint, resume, source
    )
    return _train_locked(
        recipe,
        config,
        run_dir,
        data,
        data_fingerprint,
        lock=lock,
        continuing=continuing,
        verbose=verbose,
        callbacks=callbacks,
        start=start,
        prepare=plan.prepare,
        build_model=lambda prepared: plan.model,
        # Another recipe name, so `train` never resumes a fine-tuning run.
        record={"recipe": name, "finetune": plan.metadata},
    )
