"""The prediction path, in one place: kept model in, answers out, for any registered model.

Routes call `predict()` with rows in the model's input form (a row of measurements, an Open
Inference Protocol tensor), or `predict_encoded()` with uploaded files and the function that decodes
them into rows (the workshop's digit routes: PNG bytes -> 28x28 pixels). Both read the kept
(version, model) pair once, so the version they report is the one that answered. The models are
ONNX Runtime sessions (app/onnx_serving.py). Where each request runs (each choice measured, see
bench/RESULTS.md):

- a few rows: on the event loop, microseconds in ONNX Runtime (a hop to a thread costs more).
- one upload while the worker is otherwise idle: decoded and predicted on the event loop.
- one upload while requests queue up (prometheus.RequestsInProgress.busy): decoded and predicted
  with the other uploads that arrived with it, in one decoding call and one model call on the event
  loop (`Coalescer`): a call of n images costs far less than n calls, and a hop to a thread per
  image costs more than it frees.
- many rows or uploads (a batch): in the thread pool, off the event loop; ONNX Runtime releases the
  GIL while it runs, so the loop reads the next requests meanwhile.
"""

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.onnx_serving import ServingModel
from app.part3.kept_models import Kept, KeptModels
from app.part3.prometheus import RequestsInProgress, predictions_of

Upload = tuple[str | None, bytes]  # (file name, content)
Decode = Callable[[Sequence[bytes], Sequence[str | None]], np.ndarray]  # contents, names -> rows
INLINE_ROWS = 8  # up to this many rows are predicted on the event loop


class ModelNotReady(RuntimeError):
    """No version of the model is loaded yet (the first training is still running)."""


class VersionNotServed(LookupError):
    """A request for a version of a model that this worker does not serve."""


@dataclass(frozen=True)
class Answers:
    version: int
    labels: list[str]
    probabilities: np.ndarray  # (n, classes)
    inputs: np.ndarray  # the rows that were predicted (decoded, for uploads)


def answer(model: ServingModel, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, probabilities): what a model call returns with what it was given."""
    return rows, model.probabilities(rows)


class Coalescer:
    """Uploads of requests that arrive together, decoded and predicted in one call each.

    The requests that one read of the sockets brings each add their upload before the event loop
    runs anything it was given later, so a call scheduled by the first of them (`call_soon`) finds
    them all. A bad file is refused to its own request only, and each upload is answered by the
    model it was given to, even if a new version is kept meanwhile.
    """

    def __init__(self) -> None:
        self._model: ServingModel | None = None
        self._decode: Decode | None = None
        self._waiting: list[tuple[Upload, asyncio.Future[tuple[np.ndarray, np.ndarray]]]] = []

    def submit(
        self, model: ServingModel, decode: Decode, upload: Upload
    ) -> "asyncio.Future[tuple[np.ndarray, np.ndarray]]":
        """(row, probabilities) of `upload`, once the waiting uploads have been decoded and predicted."""
        loop = asyncio.get_running_loop()
        if self._waiting and (model is not self._model or decode is not self._decode):
            self._predict_waiting()
        if not self._waiting:
            self._model, self._decode = model, decode
            loop.call_soon(self._predict_waiting)
        future: asyncio.Future[tuple[np.ndarray, np.ndarray]] = loop.create_future()
        self._waiting.append((upload, future))
        return future

    def _predict_waiting(self) -> None:
        waiting, model, decode = self._waiting, self._model, self._decode
        self._waiting, self._model, self._decode = [], None, None
        if not waiting or model is None or decode is None:
            return
        # Run by the event loop, not a request: whatever goes wrong must reach the waiting requests
        # (each fails as it would have alone), never escape and leave them waiting.
        try:
            rows = decode([data for (_, data), _ in waiting], [name for (name, _), _ in waiting])
        except Exception:  # one of them is bad: each alone, so that only its request is refused
            waiting, decoded = self._decode_each(decode, waiting)
            if not waiting:
                return
            rows = np.concatenate(decoded)
        try:
            probabilities = model.probabilities(rows)
        except Exception as error:
            for _, future in waiting:
                if not future.done():
                    future.set_exception(error)
            return
        for index, (_, future) in enumerate(waiting):
            if not future.done():  # done: its request was cancelled (the client went away)
                future.set_result((rows[index : index + 1], probabilities[index : index + 1]))

    @staticmethod
    def _decode_each(decode: Decode, waiting: list) -> tuple[list, list[np.ndarray]]:
        """The uploads that decode, with their rows; the others' requests get their error."""
        decoded, good = [], []
        for (name, data), future in waiting:
            try:
                decoded.append(decode([data], [name]))
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

    def kept_model(self, name: str, version: int | None = None) -> Kept:
        """The kept (version, model) pair; `version`: only if that is the version kept."""
        kept = self.kept.get(name)
        if kept is None:
            raise ModelNotReady(f"the {name} model is not loaded yet; GET /health/ready says when it is")
        if version is not None and kept.version != version:
            raise VersionNotServed(f"{name} version {version} is not served here; version {kept.version} is")
        return kept

    def _answers(self, name: str, kept: Kept, rows: np.ndarray, probabilities: np.ndarray) -> Answers:
        predictions_of(name, kept.version).inc(len(rows))
        return Answers(kept.version, kept.model.labels(probabilities), probabilities, rows)

    def predict(self, name: str, rows: np.ndarray, version: int | None = None) -> Answers:
        """Answers for rows already in the model's input form, here and now (a few rows)."""
        kept = self.kept_model(name, version)
        return self._answers(name, kept, rows, kept.model.probabilities(rows))

    async def predict_rows(self, name: str, rows: np.ndarray, version: int | None = None) -> Answers:
        """As `predict`, with a batch of many rows run in the thread pool."""
        if len(rows) <= INLINE_ROWS:
            return self.predict(name, rows, version)
        kept = self.kept_model(name, version)
        rows, probabilities = await run_in_threadpool(answer, kept.model, rows)
        return self._answers(name, kept, rows, probabilities)

    async def predict_encoded(self, name: str, uploads: list[Upload], decode: Decode) -> Answers:
        """Answers for uploaded files, in order, decoded by `decode` (which raises UploadError naming a
        bad file: the request is refused, naming it)."""
        kept = self.kept_model(name)
        if len(uploads) > 1:
            rows, probabilities = await run_in_threadpool(self._decode_and_predict, kept.model, decode, uploads)
        elif self.load.busy():
            rows, probabilities = await self.coalescer.submit(kept.model, decode, uploads[0])
        else:
            rows, probabilities = self._decode_and_predict(kept.model, decode, uploads)
        return self._answers(name, kept, rows, probabilities)

    @staticmethod
    def _decode_and_predict(model: ServingModel, decode: Decode, uploads: list[Upload]):
        return answer(model, decode([data for _, data in uploads], [name for name, _ in uploads]))
