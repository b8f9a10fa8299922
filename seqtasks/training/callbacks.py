"""Keras callbacks of the training driver: epoch timing, a time limit, the data epoch
number, and the learning-rate plateau rule."""

from __future__ import annotations

import logging
import time

import keras

from seqtasks.config import TrainConfig

log = logging.getLogger("seqtasks.training")  # one logger name for the package


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


def reduce_lr_on_plateau(config: TrainConfig, scheduled: bool):
    """``ReduceLROnPlateau`` by ``config.reduce_lr_factor``, or None.

    None when the factor is 1, or when ``scheduled``: the recipe compiled the
    optimizer with a ``LearningRateSchedule`` (:meth:`seqtasks.recipe.Recipe.uses_schedule`),
    whose rate Keras cannot set; the schedule owns it. The recipe says so rather than the
    optimizer being asked, since Keras has no public accessor for an optimizer's schedule.
    """
    if config.reduce_lr_factor >= 1 or scheduled:
        return None
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=config.reduce_lr_factor, patience=0, min_lr=1e-6
    )
