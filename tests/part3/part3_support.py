"""Helpers for the Part 3 service's tests.

- `seed_store(folder)` publishes a penguin model and a tiny digit model (a few hundred images, one
  epoch), so a service started on a copy of it is ready without its first training.
- `running_service(...)` starts the app in-process with a TestClient (the lifespan runs) and waits
  until it is ready (`trainer=False`: no trainer process, for tests that run no job).
- `ServiceProcess` starts it for real with `fastapi run` on a free loopback port; `serving_process(...)`
  waits until it is ready and stops it at the end.
- `wait_until`, `WAIT` and `free_port` are tests/polling.py's, for every suite.
- `run_in_own_thread(coroutine)`: asyncio.run on a thread of its own (a browser test may leave an
  event loop running in the main thread, where asyncio.run refuses to start).
"""

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from app import promotion
from app.datasets import bundled_images
from app.models import mnist, penguins
from app.part3.main import create_app
from app.part3.settings import Settings
from app.part3.trainer_worker import embedded_trainer_lock
from app.paths import DATA_DIR, PROJECT_ROOT
from app.store import ModelStore
from tests.polling import free_port, wait_until

SEED_IMAGES = 300
API_KEY = "correct horse battery staple"


def seed_store(folder: Path) -> None:
    model = penguins.MODEL
    trained = model.train(model.training_data(), model.parameters())
    promotion.publish(model, trained, {"parameters": {"n_neighbors": 11}}, ModelStore(model.name, folder))
    images, labels = bundled_images("train")
    result = mnist.train(images[:SEED_IMAGES], labels[:SEED_IMAGES], epochs=1, seed=0)
    promotion.publish(
        mnist.MODEL,
        result,
        {"parameters": {"epochs": 1}, "data": {"source": "bundled", "n_images": SEED_IMAGES}},
        ModelStore(mnist.MODEL_NAME, folder),
    )


def copy_store(template: Path, destination: Path) -> Path:
    shutil.copytree(template, destination)
    return destination


def service_settings(models_dir: Path, **overrides) -> Settings:
    values = {"models_dir": models_dir, "epochs": 1, "poll_interval": 0.2, "shutdown_grace": 5.0, **overrides}
    return Settings(**values)


@contextlib.contextmanager
def running_service(
    models_dir: Path, wait_ready: bool = True, trainer: bool = True, **overrides
) -> Iterator[TestClient]:
    """The service in-process. `trainer=False` holds the store's trainer lock meanwhile, as if its trainer
    ran elsewhere: no trainer process (and its Keras import) starts, and jobs stay queued."""
    settings = service_settings(models_dir, **overrides)
    with contextlib.ExitStack() as running:
        if not trainer:
            running.enter_context(embedded_trainer_lock(settings))
        client = running.enter_context(TestClient(create_app(settings)))
        if wait_ready:
            wait_until(lambda: client.get("/health/ready").status_code == 200, "the service is ready")
        yield client


def digit_file(digit: int) -> tuple[str, bytes, str]:
    name = f"test_img{digit}.png"
    return name, (DATA_DIR / "test_image" / name).read_bytes(), "image/png"


def training_zip() -> tuple[str, bytes, str]:
    return "train_img.zip", (DATA_DIR / "train_img.zip").read_bytes(), "application/zip"


def wait_for_job(get: Callable[[str], httpx.Response], job_id: str, seen: list[str] | None = None) -> dict:
    """Poll GET /jobs/{id} until the job ends; `seen` collects every status observed on the way."""

    def finished():
        job = get(f"/jobs/{job_id}").json()
        if seen is not None and (not seen or seen[-1] != job["status"]):
            seen.append(job["status"])
        return job if job["status"] in ("succeeded", "failed") else None

    return wait_until(finished, f"job {job_id} ends", step=0.2)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus exposition text (0 when absent)."""
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(match[3])
    return 0.0


class ServiceProcess:
    """`fastapi run app/part3/main.py` in a real process (its own process group, stopped at the end)."""

    def __init__(
        self,
        models_dir: Path,
        workers: int = 1,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        cwd: Path | None = None,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log or models_dir.parent / f"service-{self.port}.log"
        environment = {
            **os.environ,
            "WORKSHOP_MODELS_DIR": str(models_dir),
            "WORKSHOP_EPOCHS": "1",
            "WORKSHOP_POLL_INTERVAL": "0.2",
            **(env or {}),
        }
        # From another working directory (as on another machine) the app is named by its full path.
        command = [
            sys.executable,
            "-m",
            "fastapi",
            "run",
            str(PROJECT_ROOT / "app/part3/main.py"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(
                command,
                cwd=cwd or PROJECT_ROOT,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def answers(self, path: str) -> httpx.Response | None:
        try:
            return self.client.get(path)
        except httpx.TransportError:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited:\n{self.log.read_text()[-3000:]}") from None
            return None

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextlib.contextmanager
def serving_process(models_dir: Path, ready: str = "/health/ready", **options) -> Iterator[ServiceProcess]:
    """A `ServiceProcess` (same options) once `ready` answers 200; stopped at the end. `.models_dir` is its store."""
    service = ServiceProcess(models_dir, **options)
    service.models_dir = models_dir
    try:
        wait_until(
            lambda: (response := service.answers(ready)) is not None and response.status_code == 200,
            f"the Part 3 service answers {ready}",
        )
        yield service
    finally:
        service.stop()


def run_in_own_thread(coroutine: Coroutine):
    """asyncio.run on a thread of its own: tests run earlier in the session (browser, schema fuzzing)
    may leave an event loop running in the main thread."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()
