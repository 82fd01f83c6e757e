"""MicroBatcher: concurrent callers share model calls and each still gets its own answer."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bench.batching import BatcherClosed, BatcherFull, MicroBatcher


def run(coroutine):
    """asyncio.run in a thread of its own: another test's session fixture (playwright's sync API)
    may keep an event loop running in the main thread, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def digit_sums(items: np.ndarray) -> list[int]:
    """A stand-in model: one answer per image, that depends on the image."""
    if (items < 0).any():
        raise ValueError("negative pixels")
    return [int(value) for value in items.reshape(len(items), -1).sum(axis=1)]


def images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 100, (count, 2, 2))


class Recorder:
    """Wraps a model function and remembers the size of every call."""

    def __init__(self, function=digit_sums) -> None:
        self.function = function
        self.sizes: list[int] = []

    def __call__(self, items):
        self.sizes.append(len(items))
        return self.function(items)


def test_concurrent_callers_share_one_call_and_get_their_own_results():
    model = Recorder()

    async def scenario():
        async with MicroBatcher(model) as batcher:
            requests = [images(count, seed) for seed, count in enumerate([1, 3, 1, 2, 5, 1, 1, 4])]
            answers = await asyncio.gather(*(batcher.predict(request) for request in requests))
        return requests, answers

    requests, answers = run(scenario())
    for request, answer in zip(requests, answers, strict=True):
        assert list(answer) == digit_sums(request)
    assert model.sizes == [sum(len(request) for request in requests)]  # all queued before the worker ran


def test_batches_never_exceed_max_batch():
    model = Recorder()

    async def scenario():
        async with MicroBatcher(model, max_batch=8) as batcher:
            requests = [images(3, seed) for seed in range(10)]
            return requests, await asyncio.gather(*(batcher.predict(request) for request in requests))

    requests, answers = run(scenario())
    assert [list(answer) for answer in answers] == [digit_sums(request) for request in requests]
    assert max(model.sizes) <= 8 and sum(model.sizes) == 30 and len(model.sizes) < 10


def test_a_request_larger_than_max_batch_is_called_alone():
    model = Recorder()

    async def scenario():
        async with MicroBatcher(model, max_batch=4) as batcher:
            return await batcher.predict(images(10, 0))

    assert list(run(scenario())) == digit_sums(images(10, 0))
    assert model.sizes == [10]


def test_one_bad_request_does_not_poison_the_others():
    async def scenario():
        async with MicroBatcher(digit_sums) as batcher:
            good = [images(2, seed) for seed in range(4)]
            negative = -np.ones((1, 2, 2), dtype=int)
            misshapen = np.zeros((1, 3, 3), dtype=int)  # cannot even be concatenated with the others
            calls = [batcher.predict(good[0]), batcher.predict(negative), batcher.predict(good[1])]
            calls += [batcher.predict(misshapen), batcher.predict(good[2]), batcher.predict(good[3])]
            return good, await asyncio.gather(*calls, return_exceptions=True)

    good, answers = run(scenario())
    assert isinstance(answers[1], ValueError) and "negative" in str(answers[1])
    assert list(answers[3]) == [0]  # alone, the 3x3 request is fine
    for request, answer in zip(good, [answers[0], answers[2], answers[4], answers[5]], strict=True):
        assert list(answer) == digit_sums(request)


def test_the_event_loop_keeps_running_during_a_model_call():
    released = threading.Event()

    def blocking_model(items):
        # Returns "blocked" if nobody on the event loop could release it.
        return ["released" if released.wait(timeout=10) else "blocked"] * len(items)

    async def scenario():
        async with MicroBatcher(blocking_model) as batcher:
            call = asyncio.ensure_future(batcher.predict(images(1, 0)))
            await asyncio.sleep(0.01)
            released.set()  # runs only if the loop is free while the model call blocks
            return await call

    assert list(run(scenario())) == ["released"]


def test_requests_arriving_during_a_call_share_the_next_one():
    entered, released = threading.Event(), threading.Event()
    model = Recorder(lambda items: (entered.set(), released.wait(10), digit_sums(items))[-1])

    async def scenario():
        async with MicroBatcher(model) as batcher:
            first = asyncio.ensure_future(batcher.predict(images(1, 0)))
            await asyncio.to_thread(entered.wait, 10)  # the first call is running
            later = [asyncio.ensure_future(batcher.predict(images(1, seed))) for seed in range(1, 6)]
            await asyncio.sleep(0)
            released.set()
            return await asyncio.gather(first, *later)

    answers = run(scenario())
    assert [list(answer) for answer in answers] == [digit_sums(images(1, seed)) for seed in range(6)]
    assert model.sizes == [1, 5]


def test_a_full_queue_refuses_at_once():
    entered, released = threading.Event(), threading.Event()

    def slow(items):
        entered.set()
        released.wait(10)
        return digit_sums(items)

    async def scenario():
        async with MicroBatcher(slow, max_queue=2) as batcher:
            running = asyncio.ensure_future(batcher.predict(images(1, 0)))
            await asyncio.to_thread(entered.wait, 10)
            queued = [asyncio.ensure_future(batcher.predict(images(1, seed))) for seed in (1, 2)]
            await asyncio.sleep(0)
            with pytest.raises(BatcherFull):
                await batcher.predict(images(1, 3))
            released.set()
            return await asyncio.gather(running, *queued)

    assert len(run(scenario())) == 3


def test_a_cancelled_caller_does_not_disturb_the_others():
    async def scenario():
        async with MicroBatcher(digit_sums) as batcher:
            leaving = asyncio.ensure_future(batcher.predict(images(1, 0)))
            staying = asyncio.ensure_future(batcher.predict(images(2, 1)))
            await asyncio.sleep(0)
            leaving.cancel()
            return await staying, leaving.cancelled()

    answer, cancelled = run(scenario())
    assert list(answer) == digit_sums(images(2, 1)) and cancelled


def test_max_wait_lets_a_lone_request_wait_for_company():
    model = Recorder()

    async def scenario():
        async with MicroBatcher(model, max_batch=2, max_wait=30) as batcher:
            first = asyncio.ensure_future(batcher.predict(images(1, 0)))
            await asyncio.sleep(0.01)
            second = await batcher.predict(images(1, 1))  # fills the batch: no need to wait 30 s
            return await first, second

    first, second = run(scenario())
    assert list(first) == digit_sums(images(1, 0)) and list(second) == digit_sums(images(1, 1))
    assert model.sizes == [2]


def test_stop_answers_what_is_queued_then_refuses():
    async def scenario():
        batcher = MicroBatcher(digit_sums)
        pending = [asyncio.ensure_future(batcher.predict(images(1, seed))) for seed in range(3)]
        await asyncio.sleep(0)
        worker = batcher._worker
        await batcher.stop()
        assert worker.done() and not worker.cancelled()
        with pytest.raises(BatcherClosed):
            await batcher.predict(images(1, 0))
        await batcher.stop()  # twice is harmless
        return await asyncio.gather(*pending)

    answers = run(scenario())
    assert [list(answer) for answer in answers] == [digit_sums(images(1, seed)) for seed in range(3)]
    assert not any(thread.name.startswith("micro-batcher") for thread in threading.enumerate())


def test_a_model_giving_the_wrong_number_of_results_is_an_error_for_its_callers():
    async def scenario():
        async with MicroBatcher(lambda items: [0]) as batcher:
            return await asyncio.gather(batcher.predict(images(2, 0)), return_exceptions=True)

    (answer,) = run(scenario())
    assert isinstance(answer, ValueError) and "1 results for 2 inputs" in str(answer)


def test_settings_are_checked():
    with pytest.raises(ValueError):
        MicroBatcher(digit_sums, max_batch=0)
    with pytest.raises(ValueError):
        MicroBatcher(digit_sums, max_wait=-1)
