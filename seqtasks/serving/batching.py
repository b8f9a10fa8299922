"""Server-side batching: concurrent requests to one signature share one TensorFlow call.

Each :class:`Batcher` owns an asyncio queue. Its worker takes the first waiting
request, then keeps taking requests for up to ``timeout`` seconds or until the
examples reach ``max_batch_size``, concatenates their inputs along the first axis,
runs the signature once in the model's single worker thread (one TensorFlow call at
a time per model version) and hands each request its rows of the outputs. If the
batched call fails, or an output lacks the batch's examples on its first axis (a
scalar output, say), the requests are run one by one, so a request that TensorFlow
rejects (say, an image that does not decode) fails alone. Any other failure while
batching fails that batch's requests with :class:`BatchingError`; the worker goes on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


class Batcher:
    """Groups the requests to one signature of one model version.

    Args:
        run: called in ``executor`` with input name to array (first axis: examples);
            returns output name to array with the same first axis (when an output
            has not, the batch's requests are run one at a time).
        executor: the model version's single-thread executor.
        max_batch_size: most examples per call (a request is never split).
        timeout: seconds to wait for more requests after the first one (0: none).
    """

    def __init__(
        self,
        run: RunFn,
        executor: concurrent.futures.Executor,
        max_batch_size: int,
        timeout: float,
    ):
        self.run = run
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.timeout = timeout
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closed = False
        self.batches = 0  # calls made, for tests and logs
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def submit(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs for one request's inputs (its rows only).

        Raises:
            Exception: whatever the signature raised for this request.
            BatchingError: batching itself failed (a bug; logged with its traceback).
        """
        if self.closed:  # unloaded meanwhile: run alone, on the old model
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, self.run, arrays)
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((arrays, future))
        return await future

    def close(self) -> None:
        """Stop after the requests already queued are answered."""
        self.closed = True
        self.queue.put_nowait(None)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        pending = None
        while True:
            first = pending or await self.queue.get()
            pending = None
            if first is None:
                return
            batch = [first]
            stop = False
            try:
                pending, stop = await self._collect(loop, batch)
                await self._run(loop, batch)
            except Exception as e:  # a bug here fails its batch, never the worker
                log.exception("batching %d requests failed", len(batch))
                error = BatchingError(f"batching failed: {type(e).__name__}: {e}")
                for _, future in batch:
                    _set(future, exception=error)
            if stop:
                return

    async def _collect(self, loop, batch: list) -> tuple:
        """Add waiting requests to ``batch``; returns ``(pending, stop)``.

        ``pending`` is a request that did not fit (it starts the next batch) and
        ``stop`` says whether :meth:`close` was called meanwhile.
        """
        size = _count(batch[0][0])
        deadline = loop.time() + self.timeout
        while size < self.max_batch_size:
            try:
                if self.queue.empty():
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    item = await asyncio.wait_for(self.queue.get(), left)
                else:
                    item = self.queue.get_nowait()
            except (TimeoutError, asyncio.TimeoutError):  # two classes before Python 3.11
                break
            if item is None:
                return None, True
            batch.append(item)  # first, so that a failure below fails it too
            count = _count(item[0])
            if size + count > self.max_batch_size:
                return batch.pop(), False
            size += count
        return None, False

    async def _run(self, loop, batch) -> None:
        batch = [(arrays, future) for arrays, future in batch if not future.cancelled()]
        if not batch:
            return
        self.batches += 1
        if len(batch) == 1:
            arrays, future = batch[0]
            try:
                outputs = await loop.run_in_executor(self.executor, self.run, arrays)
            except Exception as e:
                _set(future, exception=e)
            else:
                _set(future, result=outputs)
            return
        names = list(batch[0][0])
        total = sum(_count(arrays) for arrays, _ in batch)
        try:
            joined = {name: np.concatenate([arrays[name] for arrays, _ in batch]) for name in names}
            outputs = await loop.run_in_executor(self.executor, self.run, joined)
        except Exception:
            log.debug("batched call failed; running its %d requests one by one", len(batch))
            outputs = None
        if outputs is not None and not _batched(outputs, total):
            log.debug(
                "outputs of a batched call do not have its %d examples on their first axis; "
                "running its %d requests one by one",
                total,
                len(batch),
            )
            outputs = None
        if outputs is None:
            for item in batch:
                await self._run(loop, [item])
            return
        start = 0
        for arrays, future in batch:
            stop = start + _count(arrays)
            _set(future, result={name: value[start:stop] for name, value in outputs.items()})
            start = stop


class BatchingError(RuntimeError):
    """A failure of the batching itself, not of the model (the server answers 500)."""


def _batched(outputs, total: int) -> bool:
    """Whether every output has ``total`` examples on its first axis (so rows can be split)."""
    return isinstance(outputs, dict) and all(
        np.ndim(value) >= 1 and len(value) == total for value in outputs.values()
    )


def _count(arrays: dict[str, np.ndarray]) -> int:
    return len(next(iter(arrays.values())))


def _set(future: asyncio.Future, result=None, exception=None) -> None:
    if future.done():  # the client went away
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(result)
