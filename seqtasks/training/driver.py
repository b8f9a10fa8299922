"""The training driver: :func:`train` runs a recipe's steps with the shared fit wiring (see
the package docstring, :mod:`seqtasks.training`); :func:`seqtasks.training.finetuning.
finetune` runs them from an export."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from typing import Any

import keras

from seqtasks import distribute
from seqtasks.config import TrainConfig
from seqtasks.errors import ConfigError, UserError
from seqtasks.io import check_output_dir, write_json_atomic
from seqtasks.precision import follow_global_policy, precision_policy
from seqtasks.recipe import Recipe
from seqtasks.training.averaging import AVERAGING_DIR, average_best, best_of, snapshot_callbacks
from seqtasks.training.callbacks import DataEpoch, EpochTimer, reduce_lr_on_plateau
from seqtasks.training.environment import peak_rss_mb, seed_everything, writes_savedmodels
from seqtasks.training.fitting import fit, write_curves
from seqtasks.training.resume import RESUME_DIR, ResumeState, truncate_history
from seqtasks.training.rundir import (
    check_run_dir,
    choose_run_dir,
    in_use_error,
    is_unfinished,
    load_data,
    lock_run,
    read_json,
    run_differences,
)
from seqtasks.versions import package_versions

log = logging.getLogger("seqtasks.training")  # one logger name for the package


@dataclasses.dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: str | None  # None on a multi-worker run's workers other than the chief
    export_path: str | None  # None when the backend cannot write SavedModels, or not the chief
    metrics: dict[str, Any]
    model: Any = None  # the trained keras.Model (best weights)
    prepared: Any = None  # the recipe's Prepared (vectorizer, datasets, labels)
    config: Any = None  # the validated config the run trained with


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
    absent = config.absent_values()
    check_run_dir(config.run_dir, recipe.name, config_dict, resume, absent)
    seed_everything(config.seed, deterministic=config.jit_compile != "true")
    start = time.perf_counter()
    # Everything that can fail on bad data happens before anything is written.
    data, data_fingerprint = load_data(recipe, config)
    resume_from, temporary = None, None
    if distribution.is_chief:
        run_dir, lock, continuing = choose_run_dir(
            config.run_dir, recipe.name, config_dict, data_fingerprint, resume, absent=absent
        )
    else:
        # TensorFlow's convention: workers other than the chief write to a temporary
        # folder. They resume (read-only) the chief's unfinished run in the shared --run-dir.
        explicit = config.run_dir
        lock, verbose = None, 0
        continuing = bool(
            resume
            and is_unfinished(explicit)
            and not run_differences(
                explicit, recipe.name, config_dict, data_fingerprint, absent=absent
            )
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
            raise in_use_error(run_dir)
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
        state = read_json(os.path.join(resume_from or run_dir, RESUME_DIR, "state.json"))
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
    prepare_seconds = time.perf_counter() - start  # reading, vocabularies, tokenizing
    log.info("prepared data in %.1f s", prepare_seconds)

    with distribution.scope():
        with precision_policy(config.mixed_precision):
            if build_model is not None:  # fine-tuning: a loaded model takes the policy too
                model = follow_global_policy(build_model(prepared))
            else:
                model = recipe.build_model(config, prepared)
        recipe.compile_model(model, config, prepared)
    timer = EpochTimer()
    monitor, mode = recipe.selection(config)
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=monitor, mode=mode, patience=config.patience, restore_best_weights=True
    )
    checkpoint = keras.callbacks.ModelCheckpoint(
        os.path.join(run_dir, "best.weights.h5"),
        monitor=monitor,
        mode=mode,
        save_best_only=True,
        save_weights_only=True,
    )
    plateau = reduce_lr_on_plateau(config, scheduled=recipe.uses_schedule(config))
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
    averaging = os.path.join(run_dir, AVERAGING_DIR)
    snapshots = snapshot_callbacks(
        averaging, config.average_last, monitor, mode, state, initial_epoch, distribution.is_chief
    )
    callbacks = [
        DataEpoch(data_epoch()),
        timer,
        *recipe.epoch_callbacks(model, prepared, config),  # before what reads their figures
        early_stopping,
        checkpoint,
        keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, "logs")),
        keras.callbacks.CSVLogger(history_path, append=initial_epoch > 0),
        *(callbacks or []),
        *([plateau] if plateau is not None else []),
        *snapshots,
        resume_state,  # last: saves the others' state after they update it
    ]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    if not model.built and state is not None:
        raise ConfigError(f"config field 'run_dir': {run_dir}: cannot resume an unbuilt model")
    with warnings.catch_warnings():
        # Length-bucketed datasets have unknown cardinality; Keras warns once per run.
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        fit(
            model,
            prepared,
            run_dir=run_dir,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
            distribution=distribution,
        )
        if distribution.strategy is not None:
            # Evaluate and export a single-device copy: no collective runs on one worker alone.
            trained = model
            with precision_policy(config.mixed_precision):
                model = recipe.build_model(config, prepared)
            recipe.compile_model(model, config, prepared)
            model.set_weights(trained.get_weights())
        if not distribution.is_chief:
            # Its run dir is a temporary folder, removed by `train`.
            metrics = {"distribution": distribution.describe()}
            return TrainResult(None, None, metrics, model, prepared, config)
        selected = resume_state.history.get(monitor, [])
        best_epoch = best_of(selected, mode)
        averaged = average_best(model, averaging, config.average_last, best_epoch, snapshots)
        metrics = recipe.evaluate(model, prepared, config)
    if averaged:
        metrics["averaged_epochs"] = averaged
        metrics[f"best_epoch_{monitor}"] = round(float(selected[best_epoch - 1]), 6)
    metrics.update(
        {
            "epochs_run": len(timer.seconds),
            "best_epoch": best_epoch,
            **({"selected_by": monitor} if monitor != "val_loss" else {}),
            "seconds_per_epoch": [round(s, 2) for s in timer.seconds],
            "train_seconds": round(sum(timer.seconds), 2),
            "prepare_seconds": round(prepare_seconds, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "distribution": distribution.describe(),
        }
    )
    write_curves(run_dir, metrics["best_epoch"])
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
    shutil.rmtree(averaging, ignore_errors=True)
    return TrainResult(run_dir, export_path, metrics, model, prepared, config)
