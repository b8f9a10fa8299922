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
- ``config.json``, ``metrics.json`` (validation metrics, seconds per epoch,
  peak memory) in the run directory.

Exports need the TensorFlow backend. Under another ``KERAS_BACKEND`` (JAX,
PyTorch) training runs the same way and the trained model is saved as
``<run_dir>/model.keras`` instead of an export.

On CPU the same seed gives the same result: Python, NumPy and backend seeds
are set with ``keras.utils.set_random_seed`` and TensorFlow op determinism is
enabled.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import resource
import shutil
import sys
import time
import warnings
from typing import Any

import keras

from seqtasks.config import TrainConfig
from seqtasks.errors import ConfigError, DataError, UserError
from seqtasks.fingerprint import fingerprint
from seqtasks.io import check_output_dir, write_json_atomic
from seqtasks.recipe import Recipe
from seqtasks.versions import package_versions

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: str
    export_path: str | None  # None when the backend cannot write SavedModels
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


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend; make TensorFlow ops deterministic."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


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
    scheduled = isinstance(
        getattr(model.optimizer, "_learning_rate", None),
        keras.optimizers.schedules.LearningRateSchedule,
    )
    if config.reduce_lr_factor >= 1 or scheduled:
        return None
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=config.reduce_lr_factor, patience=0, min_lr=1e-6
    )


def train(
    recipe: Recipe,
    config: TrainConfig,
    verbose: int | None = None,
    callbacks: list | None = None,
) -> TrainResult:
    """Train ``recipe`` with ``config``, evaluate on validation data and export.

    Args:
        recipe: the task recipe.
        config: a validated config of ``recipe.config_class``.
        verbose: Keras ``fit`` verbosity; default: a progress bar on a terminal,
            one line per epoch otherwise.
        callbacks: extra Keras callbacks for ``fit`` (e.g. a time limit in benchmarks).

    Returns:
        :class:`TrainResult` with the run directory, the export version folder
        and the validation metrics.

    Raises:
        UserError: for bad data or config (raised by the recipe's steps).
    """
    config = config.validate()
    run_dir = config.run_dir or default_run_dir(recipe.name)
    check_output_dir(config.export_dir, "export_dir")
    check_output_dir(run_dir, "run_dir")
    if os.path.exists(os.path.join(run_dir, "config.json")):
        raise ConfigError(
            f"config field 'run_dir': {run_dir} already holds a run; choose another --run-dir"
        )
    seed_everything(config.seed)
    start = time.perf_counter()
    # Everything that can fail on bad data happens before anything is written.
    data = recipe.load_data(config)
    check_split_size(len(data), config.data)
    data_fingerprint = {**fingerprint(config.data), "examples": len(data)}
    created_run_dir = not os.path.exists(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    write_json_atomic(
        os.path.join(run_dir, "config.json"),
        {
            "recipe": recipe.name,
            "config": config.to_dict(),
            "data": data_fingerprint,
            "versions": package_versions(),
        },
    )
    try:
        prepared = recipe.prepare(config, data, run_dir)
    except UserError:
        if created_run_dir:  # a data/config problem found late: leave nothing behind
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    log.info("prepared data in %.1f s", time.perf_counter() - start)

    model = recipe.build_model(config, prepared)
    recipe.compile_model(model, config)
    timer = EpochTimer()
    callbacks = [
        timer,
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True
        ),
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, "best.weights.h5"),
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
        ),
        keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, "logs")),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv")),
        *(callbacks or []),
    ]
    plateau = reduce_lr_on_plateau(model, config)
    if plateau is not None:
        callbacks.append(plateau)
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    with warnings.catch_warnings():
        # Length-bucketed datasets have unknown cardinality; Keras warns once per run.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        history = model.fit(
            prepared.train,
            validation_data=prepared.validation,
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the tf.data pipeline shuffles (seeded)
        )
        metrics = recipe.evaluate(model, prepared)
    val_losses = history.history.get("val_loss", [])
    metrics.update(
        {
            "epochs_run": len(timer.seconds),
            "best_epoch": int(min(range(len(val_losses)), key=val_losses.__getitem__)) + 1
            if val_losses
            else None,
            "seconds_per_epoch": [round(s, 2) for s in timer.seconds],
            "train_seconds": round(sum(timer.seconds), 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    )
    write_json_atomic(os.path.join(run_dir, "metrics.json"), metrics)
    if keras.backend.backend() != "tensorflow":
        # SavedModels need the TensorFlow backend; keep the trained model instead of losing it.
        path = os.path.join(run_dir, "model.keras")
        model.save(path)
        log.warning(
            "KERAS_BACKEND=%s cannot write a TensorFlow SavedModel; the trained model is in %s",
            keras.backend.backend(),
            path,
        )
        return TrainResult(run_dir, None, metrics, model=model, prepared=prepared)
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
    return TrainResult(run_dir, export_path, metrics, model=model, prepared=prepared)
