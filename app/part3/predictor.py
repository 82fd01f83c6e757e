"""The prediction path, in one place: kept model in, answers out.

Routes call only `penguin()` and `digits()`. Both read the kept (version, model) pair once, so the
version they report is the one that answered. `digits()` takes the uploaded bytes, not decoded
arrays, so that decoding and prediction are optimised together behind this interface without
touching a route. Where each request runs (each choice measured, see bench/RESULTS.md):

- penguins, and one image: on the event loop. A penguin takes a few microseconds of NumPy; one
  image about 0.15 ms (decoding, then app/mnist_numpy.py). A hop to the thread pool and back would
  cost more than that (about 0.1 ms of latency per request here).
- several images (POST /predict/batch/): milliseconds, so in a worker thread, off the event loop.

Handing concurrent single images to a micro-batching thread (app/batching.py) was measured too:
slower at one connection and no faster at eight, because the event loop and that thread take turns
holding the GIL. Several worker processes (`--workers N`) are what use more cores.
"""

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from app import images, mnist, penguins
from app.part3.kept_models import Kept, KeptModels
from app.part3.metrics import predictions_of

Upload = tuple[str | None, bytes]  # (file name, content)


class ModelNotReady(RuntimeError):
    """No version of the model is loaded yet (the first training is still running)."""


@dataclass(frozen=True)
class PenguinAnswer:
    version: int
    species: str


@dataclass(frozen=True)
class DigitAnswers:
    version: int
    digits: list[int]


class Predictor:
    def __init__(self, kept: KeptModels) -> None:
        self.kept = kept

    def _kept(self, name: str) -> Kept:
        kept = self.kept.get(name)
        if kept is None:
            raise ModelNotReady(f"the {name} model is not loaded yet; GET /health/ready says when it is")
        return kept

    def penguin(self, bill_length_mm: float, flipper_length_mm: float) -> PenguinAnswer:
        kept = self._kept(penguins.MODEL_NAME)
        species = kept.model.predict(bill_length_mm, flipper_length_mm)
        predictions_of(penguins.MODEL_NAME, kept.version).inc()
        return PenguinAnswer(kept.version, species)

    async def digits(self, uploads: list[Upload]) -> DigitAnswers:
        """The digit in each uploaded image, in order. Raises UploadError naming the first bad file."""
        if not uploads:
            raise images.UploadError("no files were uploaded; send one or more images as 'files'")
        kept = self._kept(mnist.MODEL_NAME)
        if len(uploads) == 1:
            digits = self._decode_and_predict(kept.model, uploads)
        else:
            digits = await run_in_threadpool(self._decode_and_predict, kept.model, uploads)
        predictions_of(mnist.MODEL_NAME, kept.version).inc(len(digits))
        return DigitAnswers(kept.version, digits)

    @staticmethod
    def _decode_and_predict(model: mnist.FastDigitPredictor, uploads: list[Upload]) -> list[int]:
        pixels = images.decode_digits([data for _, data in uploads], [name for name, _ in uploads])
        return model.digits(pixels)
