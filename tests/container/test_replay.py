"""The image, replayed without Docker: its files and installs are enough to serve, predict and train.

replay.py copies only what the Dockerfile's COPY lines copy (after .dockerignore) into a temporary
folder standing for the image's `/`, runs its `uv sync` lines into a NEW virtual environment there,
then starts its CMD (port changed, bound to loopback) with its ENV and nothing of this test session's.
A missing COPY, a dependency left out of the synced groups, or an ENV the service needs fails here.
"""

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from replay import Replay

from app.paths import DATA_DIR, PROJECT_ROOT
from tests.polling import free_port
from workshop.dockerfile import Dockerfile

pytestmark = pytest.mark.slow

READY_TIMEOUT = 900  # s: a first start imports Keras and trains both initial models on 2 shared cores
JOB_TIMEOUT = 900
TIMINGS = PROJECT_ROOT / "artifacts" / "container-replay.json"
# One-epoch models are what the promotion gate is for refusing; this test is about the container, so
# its service accepts any version (tests/conftest.py does the same for the rest of the suite).
GATE_OPEN = {
    "WORKSHOP_GATE_FLOOR__MNIST": "0",
    "WORKSHOP_GATE_FLOOR__PENGUINS": "0",
    "WORKSHOP_GATE_MARGIN__MNIST": "1",
    "WORKSHOP_GATE_MARGIN__PENGUINS": "1",
}


class Service:
    """The replayed image's CMD, running."""

    def __init__(self, replay: Replay, port: int, extra_env: dict[str, str], log: Path) -> None:
        self.replay, self.port, self.log = replay, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.env = replay.process_env(extra=extra_env)
        cmd = replay.dockerfile.last("CMD").exec_form
        self.original_port = cmd[cmd.index("--port") + 1]
        self.command = replay.command(cmd, port)
        self.process = subprocess.Popen(
            self.command,
            cwd=replay.host_path(replay.workdir),
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout: float) -> httpx.Response:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, f"the service exited ({self.process.returncode}):\n{self.logs()}"
                try:
                    response = client.get("/health/ready")
                    if response.status_code == 200:
                        return response
                except httpx.TransportError:
                    pass
                time.sleep(1)
        raise AssertionError(f"not ready after {timeout} s:\n{self.logs()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # what `docker stop` sends to PID 1
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    measured: dict[str, float] = {}
    started = time.monotonic()
    yield measured
    measured["module_total"] = round(time.monotonic() - started, 1)
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(measured, indent=2) + "\n")
    print(f"\ncontainer replay timings (s): {measured}")


@pytest.fixture(scope="module")
def replay(tmp_path_factory, timings) -> Replay:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("image-root")
    built = Replay(Dockerfile.read(PROJECT_ROOT / "Dockerfile").target(), PROJECT_ROOT, root).build()
    timings["build"] = round(time.monotonic() - started, 1)
    return built


@pytest.fixture(scope="module")
def api_key() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def service(replay, api_key, tmp_path_factory, timings):
    started = time.monotonic()
    extra = {"WORKSHOP_EPOCHS": "1", "WORKSHOP_INITIAL_EPOCHS": "1", "WORKSHOP_API_KEY": api_key, **GATE_OPEN}
    running = Service(replay, free_port(), extra, tmp_path_factory.mktemp("logs") / "service.log")
    try:
        running.wait_ready(READY_TIMEOUT)
        timings["start_to_ready_empty_store"] = round(time.monotonic() - started, 1)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def client(service):
    with httpx.Client(base_url=service.url, timeout=60) as http:
        yield http


def test_the_image_holds_the_runtime_and_data_but_nothing_local(replay):
    top_level = {path.parts[0] for path in replay.copied}
    assert {"app", "data", "pyproject.toml", "uv.lock"} <= top_level, top_level
    assert top_level.isdisjoint({"models", ".venv", ".git", "tests", "notebooks", "artifacts", "workshop", "bench"}), (
        top_level
    )
    assert not any("__pycache__" in path.parts for path in replay.copied)


def test_the_environment_is_new_and_holds_no_dev_tools(replay):
    venv = replay.host_path(replay.workdir / ".venv")
    python = venv / "bin" / "python"
    assert python.exists(), f"uv sync made no environment at {venv}"
    assert (venv / "bin" / "fastapi").exists()
    assert not (venv / "bin" / "pytest").exists() and not (venv / "bin" / "jupyter").exists(), "dev tools leaked in"
    assert not list((venv / "lib").glob("python*/site-packages/litserve")), "the benchmark's LitServe leaked in"
    located = subprocess.run(
        [python, "-c", "import app, fastapi, onnxruntime, keras, sklearn; print(app.__file__)"],
        env=replay.process_env(),
        cwd=replay.root,
        capture_output=True,
        text=True,  # from `/`: the install, not the cwd
    )
    assert located.returncode == 0, located.stderr
    assert Path(located.stdout.strip()).is_relative_to(replay.root), "app is imported from outside the image"


def test_the_service_becomes_ready_with_both_models(service, client):
    health = client.get("/health/ready").json()
    assert health["status"] == "ready"
    assert all(version is not None for version in health["models"].values()), health


def test_the_healthcheck_command_passes_when_ready_and_fails_when_down(replay, service):
    healthcheck = replay.healthcheck(service.original_port, service.port)
    ok = subprocess.run(
        healthcheck, env=service.env, cwd=replay.host_path(replay.workdir), capture_output=True, timeout=30
    )
    assert ok.returncode == 0, ok.stderr.decode()
    down = replay.healthcheck(service.original_port, free_port())  # nothing listens there
    failed = subprocess.run(down, env=service.env, capture_output=True, timeout=30)
    assert failed.returncode != 0


def test_the_models_are_written_to_the_volume(replay, service):
    models = Path(service.env["WORKSHOP_MODELS_DIR"])
    assert models.is_relative_to(replay.root) and str(replay.workdir) != "/"
    assert [str(path) for path in replay.dockerfile.volumes()] and models == replay.host_path(
        replay.dockerfile.volumes()[0]
    )
    for name in ("mnist", "penguins"):
        assert any((models / name).glob("*/metadata.json")), f"no {name} version under {models}"


def test_predicts_a_penguin(client):
    response = client.get("/predict/", params={"bill": 40.3, "flipper": 195})
    assert response.status_code == 200, response.text
    assert response.json()["result"] in {"Adelie", "Chinstrap", "Gentoo"}


def test_predicts_an_image(client):
    image = DATA_DIR / "test_image" / "test_img7.png"
    response = client.post("/predict/", files={"file": (image.name, image.read_bytes(), "image/png")})
    assert response.status_code == 200, response.text
    assert response.json()["result"] in set("0123456789")


def test_training_requires_the_api_key(client):
    archive = DATA_DIR / "train_img.zip"
    response = client.post("/train/", files=[("files", (archive.name, archive.read_bytes(), "application/zip"))])
    assert response.status_code == 401, response.text


def test_training_publishes_a_version_that_then_serves(client, api_key, timings):
    before = client.get("/models/").json()["mnist"]["active"]
    archive = DATA_DIR / "train_img.zip"
    started = time.monotonic()
    accepted = client.post(
        "/train/",
        files=[("files", (archive.name, archive.read_bytes(), "application/zip"))],
        headers={"X-API-Key": api_key},
    )
    assert accepted.status_code == 202, accepted.text
    job_url = accepted.json()["url"]
    deadline = time.monotonic() + JOB_TIMEOUT
    while (job := client.get(job_url).json())["status"] not in {"succeeded", "failed"}:
        assert time.monotonic() < deadline, f"job still {job['status']} after {JOB_TIMEOUT} s"
        time.sleep(1)
    assert job["status"] == "succeeded", job
    timings["train_job"] = round(time.monotonic() - started, 1)
    assert job["version"] != before and job["parent"] == before, job
    image = DATA_DIR / "test_image" / "test_img3.png"
    deadline = time.monotonic() + 30  # the kept model is swapped at the next poll of the store
    while (served := client.post("/predict/", files={"file": (image.name, image.read_bytes(), "image/png")}).json())[
        "version"
    ] != job["version"]:
        assert time.monotonic() < deadline, f"still serving {served['version']}, not the new {job['version']}"
        time.sleep(0.5)
    assert client.get("/models/").json()["mnist"]["active"] == job["version"]


def test_a_new_container_on_the_same_volume_serves_the_saved_versions(
    replay, service, client, api_key, tmp_path_factory, timings
):
    """`docker rm` + `docker run` with the same volume: no training at start, the newest versions serve."""
    saved = {name: listing["active"] for name, listing in client.get("/models/").json().items()}
    service.stop()
    started = time.monotonic()
    extra = {"WORKSHOP_EPOCHS": "1", "WORKSHOP_INITIAL_EPOCHS": "1", "WORKSHOP_API_KEY": api_key, **GATE_OPEN}
    again = Service(replay, free_port(), extra, tmp_path_factory.mktemp("logs") / "service-again.log")
    try:
        ready = again.wait_ready(READY_TIMEOUT)
        timings["start_to_ready_saved_models"] = round(time.monotonic() - started, 1)
        assert ready.json()["models"] == saved
        with httpx.Client(base_url=again.url, timeout=60) as http:
            assert {name: listing["active"] for name, listing in http.get("/models/").json().items()} == saved
            assert all(job["status"] in {"succeeded", "failed"} for job in http.get("/jobs/").json())
    finally:
        again.stop()
