"""One progress display for every slow step: reading data, learning vocabularies, caching
image features, exporting, evaluating an export over a dataset.

On a terminal (stderr is a TTY) a tqdm bar is drawn on stderr; otherwise (logs, CI,
pipes) one plain line is written every :data:`PLAIN_EVERY` percent, e.g.::

    learning the de vocabulary: counting words: 40% (8/20 batches, 12 s)

so a log stays readable. Nothing is shown for a step that ends within ``delay``
seconds (default :data:`DELAY`): quick steps stay silent. ``SEQTASKS_PROGRESS=0`` in
the environment, or :func:`set_enabled(False) <set_enabled>` (e.g. for ``--quiet``),
turns every display off; progress never goes to stdout, so ``--json`` output stays
clean.

Usage::

    with progress("encoding images", total=len(ids), unit="images") as bar:
        for batch in batches:
            ...
            bar.update(len(batch))

    for item in track(items, "reading reviews", total=len(items)):
        ...
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")

DELAY = 2.0  # seconds before anything is shown
PLAIN_EVERY = 10  # percent between two plain lines
PLAIN_SECONDS = 10.0  # seconds between two plain lines when the total is unknown

_enabled: bool | None = None  # None: follow SEQTASKS_PROGRESS


def set_enabled(enabled: bool | None) -> None:
    """Turn progress displays on or off for this process (None: back to the environment's
    ``SEQTASKS_PROGRESS``, on unless it is ``0``/``false``/``no``/``off``)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    """Whether progress is shown (see :func:`set_enabled`)."""
    if _enabled is not None:
        return _enabled
    return os.environ.get("SEQTASKS_PROGRESS", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


class Progress:
    """A running display of ``n`` out of ``total`` units (see the module docstring).

    Args:
        description: what is being done (``"encoding images"``).
        total: the number of units, or None when unknown (a count is shown).
        unit: the unit's name in plain lines (``"images"``, ``"batches"``).
        stream: where to write (default ``sys.stderr``, looked up when created).
        delay: seconds before anything is shown (default :data:`DELAY`).
        terminal: draw a tqdm bar (True) or plain lines (False); default: whether
            ``stream`` is a TTY.
        disable: show nothing (default: not :func:`enabled`).
    """

    def __init__(
        self,
        description: str,
        total: int | None = None,
        unit: str = "steps",
        *,
        stream: IO[str] | None = None,
        delay: float = DELAY,
        terminal: bool | None = None,
        disable: bool | None = None,
    ):
        self.description = description
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.disabled = (not enabled()) if disable is None else disable
        self.n = 0
        self.start = time.monotonic()
        self._last_step = -1  # the last PLAIN_EVERY-percent step written
        self._last_time = self.start
        self._printed = False
        self._bar = None
        if terminal is None:
            terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        if not self.disabled and terminal:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=description,
                unit=f" {unit}",
                file=self.stream,
                delay=delay,
                leave=False,
                dynamic_ncols=True,
            )

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.n += n
        if self.disabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self.start < self.delay:
            return
        if self.total:
            step = min(100, int(100 * self.n / self.total)) // PLAIN_EVERY
            if step > self._last_step:
                self._last_step = step
                self._write(now)
        elif now - self._last_time >= PLAIN_SECONDS or not self._printed:
            self._write(now)

    def close(self) -> None:
        """End the display: a final plain line when earlier ones were written and the last
        did not already say 100%."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._printed and not (self.total and self._last_step * PLAIN_EVERY >= 100):
            self._write(time.monotonic(), done=True)

    def _write(self, now: float, done: bool = False) -> None:
        seconds = f"{now - self.start:.0f} s"
        if self.total:
            share = min(100, round(100 * self.n / self.total))
            counts = f"{share}% ({self.n}/{self.total} {self.unit}, {seconds})"
        else:
            counts = f"{self.n} {self.unit} ({seconds}{', done' if done else ''})"
        self.stream.write(f"{self.description}: {counts}\n")
        self.stream.flush()
        self._printed, self._last_time = True, now

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def progress(description: str, total: int | None = None, unit: str = "steps", **kwargs):
    """A :class:`Progress` as a context manager (closed on exit, also on an error)."""
    bar = Progress(description, total, unit, **kwargs)
    try:
        yield bar
    finally:
        bar.close()


def track(
    items: Iterable[T], description: str, total: int | None = None, unit: str = "steps", **kwargs
) -> Iterator[T]:
    """Yield ``items`` while showing one unit of progress per item (``total`` defaults to
    ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    with progress(description, total, unit, **kwargs) as bar:
        for item in items:
            yield item
            bar.update(1)


def counting_calls(fn, bar: Progress, input_name: str):
    """``fn`` (a signature function called with keyword tensors) that adds the batch size of
    its ``input_name`` argument to ``bar`` after each call: progress for
    :func:`seqtasks.inference.call_in_batches`."""

    def call(**inputs):
        outputs = fn(**inputs)
        bar.update(int(inputs[input_name].shape[0]))
        return outputs

    return call
