"""The ``fit`` call of the training driver: Keras ``fit`` (or the multi-worker loop) with
Ctrl-C handling, and the training curves drawn from a run's history afterwards."""

from __future__ import annotations

import logging
import os

import keras

from seqtasks import distribute
from seqtasks.training.interrupt import StopOnInterrupt, TrainingInterrupted

log = logging.getLogger("seqtasks.training")  # one logger name for the package

CURVES = "curves.png"  # <run_dir>/curves.png: loss and metrics per epoch


def fit(
    model,
    prepared,
    *,
    run_dir: str,
    epochs: int,
    initial_epoch: int,
    callbacks: list,
    verbose: int,
    distribution: distribute.Distribution,
) -> None:
    """Train ``model`` on ``prepared.train``, validating on ``prepared.validation``.

    On one worker, Ctrl-C stops training at the next batch (see
    :mod:`seqtasks.training.interrupt`); any ``KeyboardInterrupt`` inside ``fit``
    (a real one, or one raised by a callback) leaves as :class:`TrainingInterrupted`
    naming ``run_dir`` and what it keeps, after the TensorBoard and CSV logs are
    closed (flushed). Multi-worker runs keep Python's default Ctrl-C behaviour: a
    worker leaving mid-epoch would leave the others waiting in a collective.

    Raises:
        TrainingInterrupted: on Ctrl-C (a ``KeyboardInterrupt``).
    """
    if distribution.workers > 1:  # Keras fit fails here (keras-team/keras#20585)
        distribute.distributed_fit(
            model,
            distribution,
            prepared.train,
            prepared.validation,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
        )
        return
    if distribution.strategy is None:  # Keras builds it itself under a strategy
        build_training_state(model, prepared.train)
    stop = StopOnInterrupt(run_dir, epochs)
    try:
        with stop.handling_sigint():
            model.fit(
                prepared.train,
                validation_data=prepared.validation,
                epochs=epochs,
                initial_epoch=initial_epoch,
                callbacks=[stop, *callbacks],  # first: nothing else runs after Ctrl-C
                verbose=verbose,
                shuffle=False,  # the tf.data pipeline shuffles (seeded by epoch)
            )
    except KeyboardInterrupt as e:
        _close_logs(callbacks)
        if isinstance(e, TrainingInterrupted):
            raise
        raise TrainingInterrupted(run_dir, epochs) from e


def build_training_state(model, dataset) -> None:
    """Create the compiled metrics', loss's and optimizer's variables before ``fit``.

    Without a distribution strategy, Keras 3 creates them inside the first trace of its
    train step; ``tf.function`` then traces the step a second time, because a trace that
    created variables cannot be reused (the TensorFlow backend). Building them first took
    ``fit`` from 5.6 s to 3.6 s for the tests' tiny bidirectional LSTM and from 11.8 s to
    6.4 s for their tiny Transformer translator (one process each, 2-core AMD EPYC).
    They are built symbolically from ``dataset.element_spec`` (shapes
    and dtypes only: no batch is read), as Keras does itself under a strategy.

    Args:
        model: a compiled Keras model.
        dataset: the training ``tf.data.Dataset`` of ``(inputs, targets)`` batches.
    """
    if keras.backend.backend() != "tensorflow" or model.optimizer is None:
        return
    try:
        model._symbolic_build(data_batch=dataset.element_spec)  # Keras 3's (private)
    except Exception as e:  # noqa: BLE001 -- fit then builds them in its first trace
        log.debug("left the training state to fit's first trace: %s", e)


def _close_logs(callbacks: list) -> None:
    """Flush and close the TensorBoard and CSV logs that ``fit`` left open."""
    for callback in callbacks:
        if isinstance(callback, (keras.callbacks.TensorBoard, keras.callbacks.CSVLogger)):
            try:
                callback.on_train_end()
            except Exception as e:  # noqa: BLE001 -- the interrupt matters more
                log.debug("could not close %s: %s", type(callback).__name__, e)


def write_curves(run_dir: str, best_epoch: int | None) -> str | None:
    """Draw ``<run_dir>/curves.png`` from ``<run_dir>/history.csv`` (see
    :func:`seqtasks.plots.training_curves`); the exported ``best_epoch`` (1-based) is
    marked. A picture that cannot be drawn is a warning, not a failed run.

    Returns:
        The PNG's path, or None when there is no history or drawing failed.
    """
    from seqtasks.curves import training_curves

    history = os.path.join(run_dir, "history.csv")
    if not os.path.exists(history):
        return None
    try:
        return training_curves(history, os.path.join(run_dir, CURVES), best_epoch=best_epoch)
    except (OSError, ValueError, ImportError) as e:
        log.warning("could not draw %s: %s", os.path.join(run_dir, CURVES), e)
        return None
