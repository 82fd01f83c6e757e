"""app/part3/predictor.py's Coalescer: uploads that arrive together share one decoding and one
model call, each answered in order by the model it was given to; a bad file refuses only its own
request."""

import asyncio

import numpy as np
import pytest

from app import images
from app.part3.predictor import Coalescer


class RecordingModel:
    """A stand-in model: the digit of an image is its first pixel; every call is recorded."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        self.calls.append(len(pixels))
        if self.fail:
            raise RuntimeError("the model broke")
        return np.eye(10)[pixels[:, 0, 0]]


def upload(digit: int) -> tuple[str, bytes]:
    return f"img_{digit}.png", images.encode_png(np.full((28, 28), digit, dtype=np.uint8))


async def ask(coalescer: Coalescer, model: RecordingModel, digit: int, decode=images.decode_digits) -> int:
    row, probabilities = await coalescer.submit(model, decode, upload(digit))
    assert row.shape == (1, 28, 28) and probabilities.shape == (1, 10)
    return int(probabilities.argmax())


def test_requests_that_arrive_together_share_one_call_and_keep_their_order():
    model, coalescer = RecordingModel(), Coalescer()

    async def together():
        return await asyncio.gather(*(ask(coalescer, model, digit) for digit in range(8)))

    assert asyncio.run(together()) == list(range(8))
    assert model.calls == [8]


def test_a_new_version_answers_only_what_was_sent_to_it():
    old, new, coalescer = RecordingModel(), RecordingModel(), Coalescer()

    async def across_a_swap():
        return await asyncio.gather(ask(coalescer, old, 1), ask(coalescer, old, 2), ask(coalescer, new, 3))

    assert asyncio.run(across_a_swap()) == [1, 2, 3]
    assert old.calls == [2] and new.calls == [1]


def test_a_request_that_went_away_does_not_stop_the_others():
    model, coalescer = RecordingModel(), Coalescer()

    async def one_cancelled():
        gone = asyncio.ensure_future(ask(coalescer, model, 4))
        kept = asyncio.ensure_future(ask(coalescer, model, 5))
        await asyncio.sleep(0)  # both are waiting now
        gone.cancel()
        return await kept

    assert asyncio.run(one_cancelled()) == 5


def test_a_failing_model_fails_every_waiting_request():
    model, coalescer = RecordingModel(fail=True), Coalescer()

    async def together():
        return await asyncio.gather(ask(coalescer, model, 1), ask(coalescer, model, 2), return_exceptions=True)

    errors = asyncio.run(together())
    assert [str(error) for error in errors] == ["the model broke"] * 2 and model.calls == [2]


def test_a_bad_file_is_refused_to_its_own_request_only():
    model, coalescer = RecordingModel(), Coalescer()

    async def one_bad():
        bad = coalescer.submit(model, images.decode_digits, ("notes.png", b"not an image"))
        return await asyncio.gather(ask(coalescer, model, 2), bad, ask(coalescer, model, 8), return_exceptions=True)

    good, refused, other = asyncio.run(one_bad())
    assert (good, other) == (2, 8) and model.calls == [2]
    assert isinstance(refused, images.UploadError) and "notes.png" in refused.message


def test_an_unexpected_decoding_error_reaches_every_request_instead_of_leaving_it_waiting():
    model, coalescer = RecordingModel(), Coalescer()

    def broken(*args):
        raise RuntimeError("the decoder broke")

    async def together():
        return await asyncio.gather(
            ask(coalescer, model, 1, broken), ask(coalescer, model, 2, broken), return_exceptions=True
        )

    assert [str(error) for error in asyncio.run(together())] == ["the decoder broke"] * 2 and model.calls == []


def test_requests_one_after_another_each_get_their_own_call():
    model, coalescer = RecordingModel(), Coalescer()

    async def in_turn():
        return [await ask(coalescer, model, digit) for digit in (6, 7)]

    assert asyncio.run(in_turn()) == [6, 7]
    assert model.calls == [1, 1]


def test_uploads_decoded_another_way_are_predicted_in_a_call_of_their_own():
    model, coalescer = RecordingModel(), Coalescer()

    def decode_again(contents, names):
        return images.decode_digits(contents, names)

    async def two_decoders():
        return await asyncio.gather(ask(coalescer, model, 1), ask(coalescer, model, 2, decode_again))

    assert asyncio.run(two_decoders()) == [1, 2]
    assert model.calls == [1, 1]


pytestmark = pytest.mark.filterwarnings("error")  # an un-awaited future or a stray task fails the test
