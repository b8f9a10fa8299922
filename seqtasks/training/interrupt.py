"""Ctrl-C during ``fit``: stop at the next batch, keep the last finished epoch, say so.

Keras checks ``model.stop_training`` only between epochs (and would still validate,
checkpoint and save the resume state of the partial epoch), so :class:`StopOnInterrupt`
installs its own SIGINT handler while ``fit`` runs: the first Ctrl-C prints
``stopping after this batch...`` at once and sets a flag that the callback turns into
:class:`TrainingInterrupted` at the next batch (training or validation) or epoch
boundary. Nothing of the partial epoch is written: the run directory keeps the resume
state of the last finished epoch (:class:`~seqtasks.training.resume.ResumeState`), which
the same command resumes from. A second Ctrl-C ends the process at once with status 130;
every file of the run directory that resuming reads is written under a temporary name
and renamed, so a sudden exit leaves the previous epoch's state intact.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading

import click
import keras

from seqtasks.training.resume import RESUME_DIR
from seqtasks.training.rundir import read_json

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C
RESUME_HINT = "run the same command again to resume"


def kept_epochs(run_dir: str) -> int:
    """Finished epochs whose state ``<run_dir>/resume/state.json`` holds (0 if none)."""
    state = read_json(os.path.join(run_dir, RESUME_DIR, "state.json"))
    return int(state["epoch"]) if isinstance(state, dict) and "epoch" in state else 0


def kept_message(run_dir: str, epochs: int) -> str:
    """What ``run_dir`` keeps and how to go on, e.g. ``runs/x keeps epoch 2 of 5; run ...``."""
    kept = kept_epochs(run_dir)
    if kept == 0:
        return f"{run_dir} keeps no finished epoch; {RESUME_HINT} (it starts at epoch 1)"
    if kept >= epochs:
        return f"{run_dir} keeps all {kept} epochs; {RESUME_HINT} (evaluation and export)"
    return f"{run_dir} keeps epoch {kept} of {epochs}; {RESUME_HINT} at epoch {kept + 1}"


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (or a ``KeyboardInterrupt`` raised inside ``fit``).

    Attributes:
        run_dir: the run directory, which keeps the last finished epoch's resume state.
        epochs: the run's ``config.epochs``.
        signalled: True when a real SIGINT stopped it (the CLI then exits at once).
    """

    def __init__(self, run_dir: str, epochs: int, signalled: bool = False):
        super().__init__(run_dir, epochs)
        self.run_dir, self.epochs, self.signalled = run_dir, epochs, signalled

    def __str__(self) -> str:
        return f"interrupted: {kept_message(self.run_dir, self.epochs)}"


class StopOnInterrupt(keras.callbacks.Callback):
    """Raises :class:`TrainingInterrupted` at the first batch or epoch hook after Ctrl-C.

    Use as a callback of ``fit`` inside ``with stop.handling_sigint():``, which installs
    the SIGINT handler (main thread only; elsewhere the flag is never set) and restores
    the previous one afterwards.

    Args:
        run_dir: the run directory (named in the messages).
        epochs: ``config.epochs`` (for "epoch 2 of 5").
        stream: where the immediate notices go (default ``sys.stderr``).
    """

    def __init__(self, run_dir: str, epochs: int, stream=None):
        super().__init__()
        self.run_dir, self.epochs = run_dir, epochs
        self.stream = stream
        self.requested = False

    def _notice(self, text: str) -> None:
        stream = self.stream or sys.stderr
        try:
            stream.write(f"\n{text}\n")  # after a progress bar's unfinished line
            stream.flush()
        except (OSError, ValueError):
            pass

    def _on_sigint(self, signum, frame) -> None:
        if self.requested:
            self._notice(
                f"interrupted again: quitting now; {kept_message(self.run_dir, self.epochs)}"
            )
            exit_now(EXIT_INTERRUPTED)
        self.requested = True
        self._notice("stopping after this batch... (Ctrl-C again to quit at once)")

    def handling_sigint(self):
        """Context manager: this callback's SIGINT handler while the block runs.

        Leaving the block normally after a Ctrl-C that no hook saw (it came after the last
        epoch) raises :class:`TrainingInterrupted` too, so nothing runs on unasked.
        """
        return _Handling(self)

    def _check(self, *args, **kwargs) -> None:
        if self.requested:
            raise TrainingInterrupted(self.run_dir, self.epochs, signalled=True)

    on_epoch_begin = on_train_batch_end = on_test_batch_end = _check


class _Handling:
    def __init__(self, stop: StopOnInterrupt):
        self.stop, self.previous = stop, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.stop._on_sigint)
        return self.stop

    def __exit__(self, kind, value, traceback):
        # After a Ctrl-C under the CLI (quit_after_stop), the process is about to end:
        # this handler stays, so a second Ctrl-C while the run winds down quits at once
        # instead of raising KeyboardInterrupt in the middle of the clean-up.
        keep = self.stop.requested and _QUIT_AFTER_STOP[0]
        if self.previous is not None and not keep:
            signal.signal(signal.SIGINT, self.previous)
        if kind is None and self.stop.requested:
            raise TrainingInterrupted(self.stop.run_dir, self.stop.epochs, signalled=True)
        return False


_QUIT_AFTER_STOP = [False]


@contextlib.contextmanager
def quit_after_stop():
    """Context manager: an interrupted ``fit`` inside it keeps its Ctrl-C handler, so a
    second Ctrl-C quits at once (for a process that ends right after, such as the CLI).
    Outside it (a library caller) the previous SIGINT handler is restored when ``fit`` ends."""
    previous = _QUIT_AFTER_STOP[0]
    _QUIT_AFTER_STOP[0] = True
    try:
        yield
    finally:
        _QUIT_AFTER_STOP[0] = previous


def exit_now(status: int) -> None:
    """End the process with ``status`` without the interpreter's teardown.

    Tearing TensorFlow down takes seconds (3-4 s for a tiny model on 2 CPU cores, more
    for larger ones). The exit handlers run first (they flush logs and the CLI's stderr
    filter, :mod:`seqtasks.native_logs`); the run directory's files are complete by then.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # already quitting: no KeyboardInterrupt
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        atexit._run_exitfuncs()
    finally:
        os._exit(status)


def report_interrupt(error: KeyboardInterrupt) -> None:
    """The CLI's answer to Ctrl-C during ``train``/``finetune``: one stderr line, status 130.

    After a real SIGINT inside ``fit`` (:class:`TrainingInterrupted` with ``signalled``)
    the process ends at once (:func:`exit_now`); otherwise by ``sys.exit(130)``.
    """
    if isinstance(error, TrainingInterrupted):
        click.echo(str(error), err=True)
        if error.signalled:
            exit_now(EXIT_INTERRUPTED)
    else:
        click.echo(f"interrupted; {RESUME_HINT}", err=True)
    sys.exit(EXIT_INTERRUPTED)
