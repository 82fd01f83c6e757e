"""Micro-batching: concurrent prediction requests share one model call.

A model answers a batch of 8 images in about the time it takes for one (the fixed cost of a call
dominates on a small CNN), so when requests arrive together, calling the model once for all of them
multiplies throughput. `MicroBatcher` queues each `await batcher.predict(images)`, and one worker
task takes everything waiting, up to `max_batch` images, concatenates it, calls the model in its own
thread (the event loop keeps accepting requests meanwhile) and hands each caller its own slice, in
order.

No request waits for company by default (`max_wait=0`): a lone request is called at once, and
batches form by themselves from the requests that arrive while a model call is running. That keeps
the latency of a quiet service at one model call and still batches under load.

    batcher = MicroBatcher(lambda pixels: mnist.predict_digits(model, pixels))
    digits = await batcher.predict(pixels)      # pixels: (n, 28, 28); digits: a list of n ints
    await batcher.stop()
"""

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class BatcherFull(RuntimeError):
    """Too many requests are waiting; answer 503 and let the client retry."""


class BatcherClosed(RuntimeError):
    """The batcher was stopped (the service is shutting down)."""


@dataclass
class _Request:
    items: np.ndarray
    future: asyncio.Future = field(repr=False)


_STOP = object()


class MicroBatcher:
    """Batch concurrent `predict` calls into single calls of `function`.

    `function(items)` takes the callers' arrays concatenated along the first axis and returns one
    result per item (a list or an array). It runs in a dedicated thread, one call at a time.
    If a shared call raises, each request is retried alone, so a bad request fails only itself.
    """

    def __init__(
        self,
        function: Callable[[np.ndarray], Sequence[Any]],
        max_batch: int = 256,
        max_wait: float = 0.0,
        max_queue: int = 1024,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError("max_batch and max_queue must be positive and max_wait not negative")
        self.function = function
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.calls = 0  # model calls made, for tests and metrics
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker task on the running event loop (`predict` does it on first use)."""
        if self._closed:
            raise BatcherClosed("the batcher is stopped")
        if self._worker is None:
            self._queue = asyncio.Queue(self.max_queue)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="micro-batcher")
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Refuse new calls, answer every call already queued, then end the worker and its thread."""
        self._closed = True
        if self._worker is None:
            return
        assert self._queue is not None and self._executor is not None  # start() made them with the worker
        await self._queue.put(_STOP)  # behind every queued request
        await self._worker
        self._executor.shutdown(wait=True)
        self._worker = None

    async def __aenter__(self) -> "MicroBatcher":
        self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    # -- calls ------------------------------------------------------------------------------------
    async def predict(self, items: np.ndarray) -> Sequence[Any]:
        """One result per item of `items` (shape (n, ...)), computed in a call shared with others."""
        if self._closed:
            raise BatcherClosed("the batcher is stopped")
        self.start()
        assert self._queue is not None  # made by start()
        request = _Request(np.asarray(items), asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            raise BatcherFull(f"{self.max_queue} requests are already waiting for the model") from None
        return await request.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        assert queue is not None  # start() makes it before the worker
        carried = None  # what did not fit in the previous batch
        while True:
            first = carried if carried is not None else await queue.get()
            carried = None
            if first is _STOP:
                break
            batch, size = [first], len(first.items)
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                try:
                    waiting = queue.get_nowait()
                except asyncio.QueueEmpty:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        waiting = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        break
                if waiting is _STOP or size + len(waiting.items) > self.max_batch:
                    carried = waiting  # answer this batch first
                    break
                batch.append(waiting)
                size += len(waiting.items)
            await self._answer(batch, loop)

    async def _answer(self, batch: list[_Request], loop: asyncio.AbstractEventLoop) -> None:
        batch = [request for request in batch if not request.future.done()]  # skip cancelled callers
        if not batch:
            return
        try:
            results = await self._call(loop, batch)
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0].future, error=error)
                return
            for request in batch:  # find who it was: each alone, so one bad request fails alone
                await self._answer([request], loop)
            return
        offset = 0
        for request in batch:
            _settle(request.future, result=results[offset : offset + len(request.items)])
            offset += len(request.items)

    async def _call(self, loop: asyncio.AbstractEventLoop, batch: list[_Request]) -> Sequence[Any]:
        items = batch[0].items if len(batch) == 1 else np.concatenate([request.items for request in batch])
        self.calls += 1
        results = await loop.run_in_executor(self._executor, self.function, items)
        if len(results) != len(items):
            raise ValueError(f"the model gave {len(results)} results for {len(items)} inputs")
        return results


def _settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():  # the caller went away meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
