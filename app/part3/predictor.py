"""The prediction path, in one place: kept model in, answers out.

Routes call only `penguin()` and `digits()`. Both read the kept (version, model) pair once, so the
version they report is the one that answered. `digits()` takes the uploaded bytes, not decoded
arrays, so that decoding and prediction can be optimised together behind this interface (bulk
decoding, micro-batching concurrent requests) without touching a route.
"""

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from app import images, mnist, penguins
from app.part3.kept_models import Kept, KeptModels
from app.part3.metrics import PREDICTIONS

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
        """The species for one pair of measurements: a few microseconds of NumPy, no thread needed."""
        kept = self._kept(penguins.MODEL_NAME)
        species = kept.model.predict(bill_length_mm, flipper_length_mm)
        PREDICTIONS.labels(penguins.MODEL_NAME, str(kept.version)).inc()
        return PenguinAnswer(kept.version, species)

    async def digits(self, uploads: list[Upload]) -> DigitAnswers:
        """The digit in each uploaded image, in order. Raises UploadError naming the first bad file."""
        if not uploads:
            raise images.UploadError("no files were uploaded; send one or more images as 'files'")
        kept = self._kept(mnist.MODEL_NAME)
        digits = await run_in_threadpool(self._decode_and_predict, kept.model, uploads)
        PREDICTIONS.labels(mnist.MODEL_NAME, str(kept.version)).inc(len(digits))
        return DigitAnswers(kept.version, digits)

    @staticmethod
    def _decode_and_predict(model, uploads: list[Upload]) -> list[int]:
        pixels = images.decode_digits([data for _, data in uploads], [name for name, _ in uploads])
        return model.digits(pixels)  # a FastDigitPredictor (see kept_models.open_mnist)
