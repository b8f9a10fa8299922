"""The training driver: runs a recipe's steps with the shared fit wiring.

Modules: :mod:`~seqtasks.training.driver` (``train``), :mod:`~seqtasks.training.finetuning`
(``finetune``), :mod:`~seqtasks.training.rundir` (run directories, locks, what differs
from an earlier run), :mod:`~seqtasks.training.resume` (the state a resumed run restores),
:mod:`~seqtasks.training.callbacks` and :mod:`~seqtasks.training.environment` (seeds,
backend). The names below are importable from ``seqtasks.training`` itself.

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
  ``<run_dir>/history.csv``, drawn (once training ends) in ``<run_dir>/curves.png``:
  loss and each metric per epoch, training against validation, the exported
  (best) epoch marked (:func:`seqtasks.plots.training_curves`);
- ``config.json`` (written first) and ``metrics.json`` (validation metrics,
  seconds per epoch, peak memory; written last, after the export, so it marks a
  finished run) in the run directory;
- after every epoch, everything needed to continue in a fresh process in
  ``<run_dir>/resume/`` (see :class:`ResumeState`).

Ctrl-C stops training at the next batch (:mod:`~seqtasks.training.interrupt`): the
partial epoch is dropped, the run directory keeps the last finished epoch, and
:class:`TrainingInterrupted` (a ``KeyboardInterrupt``) names it; a second Ctrl-C
ends the CLI at once.

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

from seqtasks.training.callbacks import DataEpoch, EpochTimer, TimeLimit, reduce_lr_on_plateau
from seqtasks.training.driver import TrainResult, train
from seqtasks.training.environment import peak_rss_mb, seed_everything, writes_savedmodels
from seqtasks.training.finetuning import finetune
from seqtasks.training.interrupt import StopOnInterrupt, TrainingInterrupted
from seqtasks.training.resume import (
    RESUME_DIR,
    ResumeState,
    seed_generator_states,
    truncate_history,
)
from seqtasks.training.rundir import (
    check_split_size,
    default_run_dir,
    is_unfinished,
    lock_run,
    run_differences,
    unfinished_runs,
)

__all__ = [
    "RESUME_DIR",
    "DataEpoch",
    "EpochTimer",
    "ResumeState",
    "StopOnInterrupt",
    "TimeLimit",
    "TrainResult",
    "TrainingInterrupted",
    "check_split_size",
    "default_run_dir",
    "finetune",
    "is_unfinished",
    "lock_run",
    "peak_rss_mb",
    "reduce_lr_on_plateau",
    "run_differences",
    "seed_everything",
    "seed_generator_states",
    "train",
    "truncate_history",
    "unfinished_runs",
    "writes_savedmodels",
]
