"""The prediction path, in one place: kept model in, answers out.

Routes call only `penguin()` and `digits()`. Both read the kept (version, model) pair once, so the
version they report is the one that answered. `digits()` takes the uploaded bytes, not decoded
arrays, so that decoding and prediction are optimised together behind this interface without
touching a route. Where each request runs (each choice measured, see bench/RESULTS.md):

- penguins: on the event loop, a few microseconds of NumPy.
- one image, while the worker is otherwise idle: on the event loop, about 0.15 ms (decoding, then
  app/mnist_numpy.py). A hop to a thread or process and back would cost more than that.
- one image while requests queue up (metrics.RequestsInProgress.busy): in the worker's digit
  helper, a child process
  (app/part3/digit_helper.py). The images of requests that arrive together go in one message and
  one NumPy call, and the event loop meanwhile reads the next requests. A thread was measured
  first and did not help: the event loop and the thread take turns holding the GIL.
- several images (POST /predict/batch/): in a worker thread, off the event loop (the compiled
  graph releases the GIL for most of its milliseconds).
"""

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from app import images, mnist, penguins
from app.part3.digit_helper import DigitHelper, HelperGone
from app.part3.kept_models import Kept, KeptModels
from app.part3.metrics import RequestsInProgress, predictions_of

Upload = tuple[str | None, bytes]  # (file name, content)
HELPER_MAX_BYTES = 64 << 10  # a 28x28 PNG is under 1 KiB; anything larger is refused on the loop


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
    def __init__(self, kept: KeptModels, load: RequestsInProgress | None = None) -> None:
        self.kept = kept
        self.load = load or RequestsInProgress()  # kept up to date by the metrics middleware
        self.helper = DigitHelper()

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
        if len(uploads) > 1:
            digits = await run_in_threadpool(self._decode_and_predict, kept.model, uploads)
        elif self.load.busy() and kept.model.specs and len(uploads[0][1]) <= HELPER_MAX_BYTES:
            digits = await self._in_helper(kept, uploads[0])
        else:
            digits = self._decode_and_predict(kept.model, uploads)
        predictions_of(mnist.MODEL_NAME, kept.version).inc(len(digits))
        return DigitAnswers(kept.version, digits)

    async def _in_helper(self, kept: Kept, upload: Upload) -> list[int]:
        filename, data = upload
        try:
            return [await self.helper.digit(kept.version, lambda: kept.model.specs, filename, data)]
        except HelperGone:
            return self._decode_and_predict(kept.model, [upload])

    def start(self) -> None:
        """Start the digit helper now, so that it is up before the first burst of requests. If it
        cannot start, the worker answers alone and a later request under load tries again."""
        self.helper.start()

    async def stop(self) -> None:
        await self.helper.stop()

    @staticmethod
    def _decode_and_predict(model: mnist.FastDigitPredictor, uploads: list[Upload]) -> list[int]:
        pixels = images.decode_digits([data for _, data in uploads], [name for name, _ in uploads])
        return model.digits(pixels)
