"""The digit helper (a child process answering single images under load) gives the worker's answers,
refuses what the worker refuses, keeps versions apart, and never loses a request when it dies."""

import asyncio
import contextlib
import io
import os
import signal
from types import SimpleNamespace

import numpy as np
import pytest
from part3_support import digit_file, run_in_own_thread
from PIL import Image

from app import images, mnist
from app.part3 import digit_helper
from app.part3.digit_helper import DigitHelper, HelperGone
from app.part3.kept_models import Kept
from app.part3.metrics import RequestsInProgress
from app.part3.predictor import Predictor

pytestmark = pytest.mark.slow  # builds Keras models

DIGITS = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9]


@pytest.fixture(scope="module")
def predictors():
    """Two different (untrained) CNNs behind the worker's fast path: versions 1 and 2."""
    return {version: mnist.FastDigitPredictor(mnist.build_model(seed=version)) for version in (1, 2)}


def worker_answer(predictor, digit: int) -> int:
    name, content, _ = digit_file(digit)
    return predictor.digits(images.decode_digits([content], [name]))[0]


@contextlib.asynccontextmanager
async def running_helper(start: bool = True):
    """A DigitHelper, its child started now (or by the first request), stopped at the end."""
    helper = DigitHelper()
    if start:
        helper.start()
    try:
        yield helper
    finally:
        await helper.stop()


def kill_child(helper: DigitHelper) -> None:
    helper.process.send_signal(signal.SIGKILL)
    helper.process.wait()


async def ask(helper: DigitHelper, predictor, version: int, digit: int) -> int:
    name, content, _ = digit_file(digit)
    return await helper.digit(version, lambda: predictor.specs, name, content)


def test_concurrent_requests_share_messages_and_get_the_workers_answers(predictors, monkeypatch):
    sent = []
    original = DigitHelper._send
    monkeypatch.setattr(DigitHelper, "_send", lambda self, message: (sent.append(message[0]), original(self, message))[1])

    async def scenario():
        async with running_helper() as helper:
            return await asyncio.gather(*(ask(helper, predictors[1], 1, digit) for digit in DIGITS))

    answers = run_in_own_thread(scenario())
    assert answers == [worker_answer(predictors[1], digit) for digit in DIGITS]
    assert sent == ["model", "predict"], "requests made in one turn of the event loop go in one message"


def test_each_request_is_answered_by_the_version_it_names(predictors):
    async def scenario():
        async with running_helper(start=False) as helper:
            return await asyncio.gather(*(ask(helper, predictors[version], version, digit)
                                          for digit in DIGITS for version in (1, 2)))

    answers = run_in_own_thread(scenario())
    expected = [worker_answer(predictors[version], digit) for digit in DIGITS for version in (1, 2)]
    assert answers == expected
    assert expected[0::2] != expected[1::2], "the two models must differ for this test to mean anything"


def test_bad_images_are_refused_as_the_worker_refuses_them(predictors):
    small = io.BytesIO()
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(small, format="PNG")
    uploads = [("notes.txt", b"not an image"), ("small.png", small.getvalue())]

    async def scenario():
        async with running_helper(start=False) as helper:
            good = ask(helper, predictors[1], 1, 7)
            bad = [helper.digit(1, lambda: predictors[1].specs, name, data) for name, data in uploads]
            return await asyncio.gather(good, *bad, return_exceptions=True)

    good, *refusals = run_in_own_thread(scenario())
    assert good == worker_answer(predictors[1], 7)
    for (name, data), refusal in zip(uploads, refusals, strict=True):
        with pytest.raises(images.UploadError) as expected:
            images.decode_digits([data], [name])
        assert isinstance(refusal, images.UploadError)
        assert (refusal.status_code, refusal.message) == (expected.value.status_code, expected.value.message)


def test_a_dead_helper_fails_its_waiting_requests_and_the_next_one_restarts_it(predictors, monkeypatch):
    monkeypatch.setattr(digit_helper, "RESTART_DELAY", 0.0)

    async def scenario():
        async with running_helper() as helper:
            await ask(helper, predictors[1], 1, 7)
            kill_child(helper)
            with pytest.raises(HelperGone):
                await ask(helper, predictors[1], 1, 3)
            answer = await ask(helper, predictors[1], 1, 3)  # a new child, sent the model again
            return answer, helper.process.pid

    answer, pid = run_in_own_thread(scenario())
    assert answer == worker_answer(predictors[1], 3)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stop() ended the new child too


class OneModel:
    """KeptModels' interface, for the predictor alone."""

    def __init__(self, version, predictor):
        self.kept = Kept(version, predictor)

    def get(self, name):
        return self.kept


def test_the_predictor_uses_the_helper_under_load_and_answers_alone_when_it_dies(predictors):
    load = RequestsInProgress()
    predictor = Predictor(OneModel(2, predictors[2]), load)

    async def scenario():
        predictor.start()
        try:
            load.count = 3  # two other requests in progress: busy
            uploads = [[digit_file(digit)[:2]] for digit in DIGITS]
            under_load = await asyncio.gather(*(predictor.digits(upload) for upload in uploads))
            used_helper = predictor.helper.running
            kill_child(predictor.helper)
            after_death = await asyncio.gather(*(predictor.digits(upload) for upload in uploads))
            return under_load, used_helper, after_death
        finally:
            await predictor.stop()

    under_load, used_helper, after_death = run_in_own_thread(scenario())
    expected = [worker_answer(predictors[2], digit) for digit in DIGITS]
    assert used_helper
    assert [answer.digits[0] for answer in under_load] == expected
    assert [answer.digits[0] for answer in after_death] == expected
    assert {answer.version for answer in under_load + after_death} == {2}


def test_a_helper_that_cannot_start_leaves_the_worker_answering(predictors, monkeypatch):
    """No process or file descriptor left: start-up goes on, and every request is answered inline."""
    attempts = []

    def no_processes_left(*args, **kwargs):
        attempts.append(args)
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(digit_helper, "subprocess", SimpleNamespace(Popen=no_processes_left))
    monkeypatch.setattr(digit_helper, "RESTART_DELAY", 0.0)
    load = RequestsInProgress()
    predictor = Predictor(OneModel(1, predictors[1]), load)

    async def scenario():
        predictor.start()  # must not raise: the service starts without its helper
        try:
            load.count = 3  # busy: each request tries the helper
            return await asyncio.gather(*(predictor.digits([digit_file(digit)[:2]]) for digit in DIGITS))
        finally:
            await predictor.stop()

    answers = run_in_own_thread(scenario())
    assert [answer.digits[0] for answer in answers] == [worker_answer(predictors[1], digit) for digit in DIGITS]
    assert len(attempts) == 1 + len(DIGITS) and not predictor.helper.running


def test_load_is_busy_when_requests_overlap_or_queue_behind_each_other():
    load = RequestsInProgress()
    load.started(1.0)
    assert not load.busy(), "a first request after a quiet second is alone"
    load.ended(1.0005)
    load.started(1.0005 + 10e-6)
    assert load.busy(), "started right after the previous answer: it was waiting for the event loop"
    load.ended(1.001)
    load.started(1.001 + 100e-6)
    assert not load.busy(), "a client's round trip later: nobody was waiting"
    load.started(1.0012)
    assert load.busy(), "two in progress"


def test_a_version_the_child_cannot_run_is_answered_by_the_worker_not_lost(predictors):
    """A failure inside the child fails only its requests (HelperGone: the worker answers them)."""

    async def scenario():
        async with running_helper(start=False) as helper:
            name, content, _ = digit_file(7)
            with pytest.raises(HelperGone):
                await helper.digit(3, lambda: [("Input", {"height": 28, "width": 28}, [])], name, content)
            return await ask(helper, predictors[1], 1, 7)  # the same child still answers

    assert run_in_own_thread(scenario()) == worker_answer(predictors[1], 7)


def test_a_stuck_child_is_replaced_and_its_requests_answered_by_the_worker(predictors, monkeypatch):
    monkeypatch.setattr(digit_helper, "ANSWER_TIMEOUT", 0.5)
    monkeypatch.setattr(digit_helper, "RESTART_DELAY", 0.0)

    async def scenario():
        async with running_helper() as helper:
            await ask(helper, predictors[1], 1, 7)
            stuck = helper.process
            stuck.send_signal(signal.SIGSTOP)
            with pytest.raises(HelperGone):
                await ask(helper, predictors[1], 1, 3)
            monkeypatch.setattr(digit_helper, "ANSWER_TIMEOUT", 60.0)  # the new child's start-up, on a busy machine
            answer = await ask(helper, predictors[1], 1, 3)
            return answer, stuck, helper.process

    answer, stuck, replacement = run_in_own_thread(scenario())
    assert answer == worker_answer(predictors[1], 3)
    assert replacement is not stuck
    assert stuck.wait(5) is not None  # the stuck child was killed


def test_a_child_that_dies_at_once_is_not_restarted_for_every_request(predictors, monkeypatch):
    monkeypatch.setattr(digit_helper, "RESTART_DELAY", 2.0)

    async def scenario():
        async with running_helper() as helper:
            kill_child(helper)
            outcomes = []
            for _ in range(3):
                try:
                    outcomes.append(await ask(helper, predictors[1], 1, 7))
                except HelperGone:
                    outcomes.append("answered by the worker")
            return outcomes, helper.running

    outcomes, running = run_in_own_thread(scenario())
    assert outcomes == ["answered by the worker"] * 3
    assert not running, "no new child within RESTART_DELAY of the last start"
