"""The prediction path, in one place: kept model in, answers out.

Routes call only `penguin()` and `digits()`. Both read the kept (version, model) pair once, so the
version they report is the one that answered. `digits()` takes the uploaded bytes, not decoded
arrays, so that decoding and prediction are optimised together behind this interface without
touching a route. The models are ONNX Runtime sessions (onnx_models.py). Where each request runs
(each choice measured, see bench/RESULTS.md):

- penguins: on the event loop, a few microseconds in ONNX Runtime.
- one image while the worker is otherwise idle: on the event loop (decoding and the model take
  less than a hop to a thread and back).
- one image while requests queue up (prometheus.RequestsInProgress.busy): decoded and predicted
  with the other images that arrived with it, in one decoding call and one model call on the event
  loop (`Coalescer`): a call of n images costs far less than n calls, and a hop to a thread per
  image costs more than it frees.
- several images (POST /predict/batch/): in the thread pool, off the event loop; ONNX Runtime
  releases the GIL while it runs, so the loop reads the next requests meanwhile.
"""

import asyncio
from dataclasses import dataclass

import numpy as np
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


class Coalescer:
    """Images of requests that arrive together, decoded and predicted in one call each.

    The requests that one read of the sockets brings each add their upload before the event loop
    runs anything it was given later, so a call scheduled by the first of them (`call_soon`) finds
    them all. A bad file is refused to its own request only, and each image is answered by the
    model it was given to, even if a new version is kept meanwhile.
    """

    def __init__(self) -> None:
        self._model: DigitModel | None = None
        self._waiting: list[tuple[Upload, asyncio.Future[int]]] = []

    def digit(self, model: DigitModel, upload: Upload) -> "asyncio.Future[int]":
        """The digit in `upload`, once the waiting uploads have been decoded and predicted."""
        loop = asyncio.get_running_loop()
        if self._waiting and model is not self._model:
            self._predict_waiting()
        if not self._waiting:
            self._model = model
            loop.call_soon(self._predict_waiting)
        future: asyncio.Future[int] = loop.create_future()
        self._waiting.append((upload, future))
        return future

    def _predict_waiting(self) -> None:
        waiting, model = self._waiting, self._model
        self._waiting, self._model = [], None
        if not waiting or model is None:
            return
        # Run by the event loop, not a request: whatever goes wrong must reach the waiting requests
        # (each fails as it would have alone), never escape and leave them waiting.
        try:
            pixels = images.decode_digits([data for (_, data), _ in waiting], [name for (name, _), _ in waiting])
        except Exception:  # one of them is bad: each alone, so that only its request is refused
            waiting, decoded = self._decode_each(waiting)
            if not waiting:
                return
            pixels = np.concatenate(decoded)
        try:
            digits = model.digits(pixels)
        except Exception as error:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), digit in zip(waiting, digits, strict=True):
            if not future.done():  # done: its request was cancelled (the client went away)
                future.set_result(digit)

    @staticmethod
    def _decode_each(
        waiting: list[tuple[Upload, "asyncio.Future[int]"]],
    ) -> tuple[list[tuple[Upload, "asyncio.Future[int]"]], list[np.ndarray]]:
        """The uploads that decode, with their pixels; the others' requests get their error."""
        decoded, good = [], []
        for (name, data), future in waiting:
            try:
                decoded.append(images.decode_digits([data], [name]))
                good.append(((name, data), future))
            except Exception as error:  # an UploadError is the client's 4xx; anything else its 500
                if not future.done():
                    future.set_exception(error)
        return good, decoded


class Predictor:
    def __init__(self, kept: KeptModels, load: RequestsInProgress | None = None) -> None:
        self.kept = kept
        self.load = load or RequestsInProgress()  # kept up to date by the metrics middleware
        self.coalescer = Coalescer()

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
        elif self.load.busy():
            digits = [await self.coalescer.digit(kept.model, uploads[0])]
        else:
            digits = self._decode_and_predict(kept.model, uploads)
        predictions_of(mnist.MODEL_NAME, kept.version).inc(len(digits))
        return DigitAnswers(kept.version, digits)

    @staticmethod
    def _decode_and_predict(model: DigitModel, uploads: list[Upload]) -> list[int]:
        pixels = images.decode_digits([data for _, data in uploads], [name for name, _ in uploads])
        return model.digits(pixels)
