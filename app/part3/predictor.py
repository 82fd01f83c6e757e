"""The prediction path, in one place: kept model in, answers out.

Routes call only `penguin()` and `digits()`. Both read the kept (version, model) pair once, so the
version they report is the one that answered. `digits()` takes the uploaded bytes, not decoded
arrays, so that decoding and prediction are optimised together behind this interface without
touching a route. The models are ONNX Runtime sessions (onnx_models.py). Where each request runs
(each choice measured, see bench/RESULTS.md):

- penguins: on the event loop, a few microseconds in ONNX Runtime.
- one image while the worker is otherwise idle: on the event loop (decoding and the model take
  less than a hop to a thread and back).
- one image while requests queue up (metrics.RequestsInProgress.busy), and several images
  (POST /predict/batch/): in the thread pool, off the event loop. ONNX Runtime releases the GIL
  while it runs, so the loop reads the next requests meanwhile.
"""

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from app import images, mnist, penguins
from app.part3.kept_models import Kept, KeptModels
from app.part3.onnx_models import DigitModel
from app.part3.prometheus import RequestsInProgress, predictions_of

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
    def __init__(self, kept: KeptModels, load: RequestsInProgress | None = None) -> None:
        self.kept = kept
        self.load = load or RequestsInProgress()  # kept up to date by the metrics middleware

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
        if len(uploads) > 1 or self.load.busy():
            digits = await run_in_threadpool(self._decode_and_predict, kept.model, uploads)
        else:
            digits = self._decode_and_predict(kept.model, uploads)
        predictions_of(mnist.MODEL_NAME, kept.version).inc(len(digits))
        return DigitAnswers(kept.version, digits)

    @staticmethod
    def _decode_and_predict(model: DigitModel, uploads: list[Upload]) -> list[int]:
        pixels = images.decode_digits([data for _, data in uploads], [name for name, _ in uploads])
        return model.digits(pixels)
