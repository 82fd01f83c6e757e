"""Helpers for the Part 2 tests (the exercise checks and the reference service's tests).

- `TrainingGate` wraps app.models.mnist.train: it records every call and can hold trainings until the test
  releases them, so a test can look at the service *while* a training runs, without any timing.
- `PendingRequest` sends a request through a TestClient's event loop without waiting for the app to
  finish: it tells when the response was sent, which comes before the app's background tasks end.
- `good_model()` trains a model once per process that gets the test images right, for the checks
  that predictions are correct (a 1-epoch test training is too weak to assert that).
- `two_trainings_at_once` serves the exercise checks and the reference service's tests alike.
"""

import io
import os
import threading
import time
import zipfile
from collections.abc import Callable
from functools import lru_cache

import anyio
import numpy as np
from PIL import Image

from app.models import mnist
from app.paths import DATA_DIR
from tests.polling import WAIT, wait_until


def digit_image(digit: int) -> tuple[str, bytes]:
    """data/test_image/test_img<digit>.png, as (name, bytes)."""
    name = f"test_img{digit}.png"
    return name, (DATA_DIR / "test_image" / name).read_bytes()


def png(width: int = 28, height: int = 28, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def training_files(count: int) -> list[tuple[str, bytes]]:
    """The first `count` images of data/train_img.zip, as (imgNNN_<label>.png, bytes)."""
    with zipfile.ZipFile(DATA_DIR / "train_img.zip") as archive:
        names = [name for name in archive.namelist() if name.endswith(".png")][:count]
        return [(name.rsplit("/", 1)[-1], archive.read(name)) for name in names]


def as_upload(files: list[tuple[str, bytes]], field: str = "files") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (name, data, "image/png")) for name, data in files]


def saved_models(folder) -> list:
    """Every Keras model file under a check's folder, however the exercise names them."""
    return sorted(folder.rglob("*.keras"))


def expect_well_trained_answers(results: dict[int, dict], version: int) -> None:
    """The predictions of test_img0..9 all come from `version`, a well-trained model, and read 9 right."""
    from tests.exercises.expect import expect, listed, shown

    answered_by = sorted({result.get("version") for result in results.values()}, key=str)
    versions = listed([shown(number) for number in answered_by])
    expect(versions == str(version), f"every prediction should come from version {version}; they came from {versions}")
    read = {digit: result.get("result") for digit, result in results.items()}
    right = [digit for digit, result in read.items() if result == str(digit)]
    expect(
        len(right) >= 9,
        f"a well-trained version should read at least 9 of the 10 test images right; it read {len(right)}: "
        + ", ".join(f"test_img{digit}.png as {shown(result)}" for digit, result in read.items()),
    )


def label_of(name: str) -> int:
    return int(name.rsplit("_", 1)[1][0])


@lru_cache(maxsize=1)
def good_model():
    """A model trained on the bundled training split for a few epochs: right on the test images.

    Trained once per machine and kept in the system's temporary folder (named after the code that
    trains it), so each exercise check loads it in a second instead of training it again."""
    import hashlib
    import inspect
    import tempfile
    from pathlib import Path

    from app import datasets

    recipe = hashlib.sha256((inspect.getsource(mnist) + inspect.getsource(datasets)).encode()).hexdigest()[:16]
    cached = Path(tempfile.gettempdir()) / f"workshop-good-mnist-{recipe}.keras"
    if cached.exists():
        try:
            return mnist.load(cached)
        except Exception:  # a damaged copy: train again below
            pass
    images, labels = datasets.bundled_images("train")
    _full_training.active = True  # a FitGate's small settings are for the code under test, not this model
    try:
        model = mnist.train(images, labels, epochs=6, seed=0).model
    finally:
        _full_training.active = False
    partial = cached.with_name(f"{cached.stem}.{os.getpid()}.keras")
    model.save(partial)
    partial.replace(cached)  # whole or not at all, for the other processes
    return model


_full_training = threading.local()
CHECK_IMAGES = 512  # a check's trainings: at most this many images, one epoch


class FitGate:
    """Every Keras `fit` while installed (`keras.Model.fit` replaced): the exercise checks' trainings.

    Whatever the learner's file says (the workshop's 15 epochs on 60,000 images), a training in a check
    fits one epoch on at most CHECK_IMAGES images, and says so as it starts and ends (the end's line, with
    the epoch's loss and accuracy, stands for Keras' progress bar). Each call's model and labels are
    recorded, so a check sees a training however it was written (app.models.mnist or the workshop's own
    `model.fit`); `hold()` makes trainings wait inside fit until `open()`. A background task that fails
    (a training that raises before it even fits) is recorded too, so a check waiting for a training
    fails at once, saying why, instead of waiting out its time-out.
    """

    def __init__(self) -> None:
        self.models: list = []
        self.labels: list[np.ndarray] = []
        self.failures: list[BaseException] = []
        self._entered = threading.Condition()
        self._released = threading.Event()
        self._released.set()
        self.start = 0  # `new_models` are those fitted since; a check's fixture moves it per test
        self.failures_start = 0

    @property
    def new_models(self) -> list:
        return self.models[self.start :]

    @property
    def new_labels(self) -> list[np.ndarray]:
        return self.labels[self.start :]

    @property
    def new_failures(self) -> list[BaseException]:
        return self.failures[self.failures_start :]

    def since_now(self) -> None:
        """Count trainings and failures from here on (one test's)."""
        self.start, self.failures_start = self.calls, len(self.failures)

    def install(self, monkeypatch) -> "FitGate":
        import keras
        from starlette.background import BackgroundTask

        real_fit = keras.Model.fit
        real_task = BackgroundTask.__call__
        gate = self

        def fit(model, x=None, y=None, *args, **kwargs):
            if getattr(_full_training, "active", False):
                return real_fit(model, x, y, *args, **kwargs)
            x, y = x[:CHECK_IMAGES], y[:CHECK_IMAGES]
            args = args[:1]  # batch_size may come by position; epochs is the check's
            kwargs.update(epochs=1, verbose=0)  # the line below stands for Keras' progress bar
            with gate._entered:
                gate.models.append(model)
                labels = np.asarray(y)
                gate.labels.append(labels.argmax(axis=-1) if labels.ndim == 2 else labels)
                gate._entered.notify_all()
            if not gate._released.wait(WAIT):
                raise RuntimeError("the check never released the training")
            started = time.monotonic()
            print(
                f"\n    [check] training on {len(y)} images for 1 epoch (the check's own small settings) ...",
                flush=True,
            )
            history = real_fit(model, x, y, *args, **kwargs)
            figures = "".join(
                f", {name} {values[-1]:.3f}" for name, values in history.history.items() if name in ("loss", "accuracy")
            )
            print(f"    [check] trained in {time.monotonic() - started:.1f} s{figures}", flush=True)
            return history

        async def task(background_task):
            try:
                await real_task(background_task)
            except Exception as error:
                with gate._entered:
                    gate.failures.append(error)
                    gate._entered.notify_all()
                raise

        monkeypatch.setattr(keras.Model, "fit", fit)
        monkeypatch.setattr(BackgroundTask, "__call__", task)
        return self

    @property
    def calls(self) -> int:
        return len(self.models)

    def hold(self) -> None:
        self._released.clear()

    def open(self) -> None:
        self._released.set()

    def wait_for(self, calls: int) -> None:
        """Until `calls` trainings have started since `start`; at once, saying why, if a background task failed."""
        with self._entered:
            self._entered.wait_for(lambda: len(self.new_models) >= calls or self.new_failures, WAIT)
            if len(self.new_models) >= calls:
                return
            if self.new_failures:
                error = self.new_failures[0]
                raise AssertionError(
                    f"the training failed in the background before it began to fit: {type(error).__name__}: {error}"
                )
            raise AssertionError(f"{calls} training(s) should have started; {len(self.new_models)} did")


class TrainingGate:
    """Wraps app.models.mnist.train: records each call's base model and parent, optionally holds it.

    `gate = TrainingGate(monkeypatch, hold=True)`: every training waits inside mnist.train until
    `gate.open()`; `gate.wait_for(n)` returns once n trainings have entered it.
    """

    def __init__(self, monkeypatch, hold: bool = False) -> None:
        self.bases: list = []
        self.parents: list[int | None] = []
        self.labels: list[np.ndarray] = []
        self._entered = threading.Condition()
        self._released = threading.Event()
        if not hold:
            self._released.set()
        real_train = mnist.train

        def gated_train(images, labels, base=None, parent=None, **kwargs):
            with self._entered:
                self.bases.append(base)
                self.parents.append(parent)
                self.labels.append(np.asarray(labels))
                self._entered.notify_all()
            if not self._released.wait(WAIT):
                raise RuntimeError("the test never released the training")
            return real_train(images, labels, base=base, parent=parent, **kwargs)

        monkeypatch.setattr(mnist, "train", gated_train)

    @property
    def calls(self) -> int:
        return len(self.bases)

    def wait_for(self, calls: int) -> None:
        with self._entered:
            if not self._entered.wait_for(lambda: len(self.bases) >= calls, WAIT):
                raise AssertionError(f"{calls} training(s) never started ({len(self.bases)} did)")

    def open(self) -> None:
        self._released.set()


class PendingRequest:
    """A request run on the TestClient's event loop; the test thread does not wait for the app.

    `answered` is set once the whole response is sent; `finish()` waits for the app to return, which
    with FastAPI's BackgroundTasks is after the background tasks have run.
    """

    def __init__(self, client, app, method: str, path: str) -> None:
        self.answered = threading.Event()
        self.status: int | None = None
        self.body = b""
        self._request_sent = False
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("testclient", 50000),
            "server": ("testserver", 80),
            "state": dict(getattr(client, "app_state", {})),
        }
        self._future = client.portal.start_task_soon(app, scope, self._receive, self._send)

    async def _receive(self) -> dict:
        if not self._request_sent:
            self._request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while not self.answered.is_set():  # the client stays connected until it has the response
            await anyio.sleep(0.01)
        return {"type": "http.disconnect"}

    async def _send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")
            if not message.get("more_body", False):
                self.answered.set()

    def json(self):
        import json

        return json.loads(self.body)

    def finish(self) -> BaseException | None:
        """Wait for the app, background tasks included; what one raised is returned, not raised, so that
        a check's own sentence about it is what the learner reads."""
        try:
            self._future.result(timeout=WAIT)
        except Exception as error:
            return error
        return None


def two_trainings_at_once(client, store, monkeypatch, n_files: int, served_version: Callable[[], int]):
    """POST /train/ twice at once: the second training must wait for the first and start from its
    result, while predictions keep answering from the base version. Returns the gate and the
    versions (base, first, second)."""
    base, before = store.active(), store.versions()
    gate = TrainingGate(monkeypatch, hold=True)
    files = as_upload(training_files(n_files))
    answers = []
    requests = [threading.Thread(target=lambda: answers.append(client.post("/train/", files=files))) for _ in range(2)]
    try:
        for request in requests:
            request.start()
        gate.wait_for(1)
        wait_until(lambda: client.get("/info/").json()["Num of model in training"] == 2, "both trainings are requested")
        assert gate.calls == 1, "the second training started while the first still ran"
        assert served_version() == base, "predictions must keep answering during a training"
    finally:
        gate.open()
        for request in requests:
            request.join()
    assert [answer.status_code for answer in answers] == [200, 200]
    first, second = store.versions()[len(before) :]
    assert store.get(first).metadata["parent"] == base
    assert store.get(second).metadata["parent"] == first, "the second training did not start from the first's result"
    return gate, (base, first, second)
