"""The real thing, where a container engine is reachable: build the image, run it, predict, train.

Skipped (saying why) where `docker info` fails, e.g. a machine with the docker client but no daemon;
test_replay.py then covers the image's files and installs without Docker.
"""

import functools
import secrets
import shutil
import subprocess
import time

import httpx
import pytest

from app.paths import DATA_DIR, PROJECT_ROOT

pytestmark = pytest.mark.slow

BUILD_TIMEOUT = 1800
READY_TIMEOUT = 900


@functools.cache
def _find_engine() -> tuple[str | None, str]:
    """(the docker client, or None with the reason), asked once per session."""
    client = shutil.which("docker")
    if client is None:
        return None, "no docker client on PATH: the image is checked by test_replay.py instead"
    info = subprocess.run(
        [client, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=60
    )
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        return (
            None,
            f"no container engine reachable (`docker info`: {reason}); test_replay.py covers the image without one",
        )
    return client, ""


def engine() -> str:
    client, reason = _find_engine()
    if client is None:
        pytest.skip(reason)
    return client


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([engine(), *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def image() -> str:
    tag = f"fastapi-ml-workshop:test-{secrets.token_hex(4)}"
    docker("build", "--tag", tag, str(PROJECT_ROOT), timeout=BUILD_TIMEOUT)
    yield tag
    docker("image", "rm", "--force", tag, check=False)


@pytest.fixture(scope="module")
def container(image):
    name = f"workshop-test-{secrets.token_hex(4)}"
    volume = f"{name}-models"
    api_key = secrets.token_urlsafe(16)
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--publish",
        "127.0.0.1::80",
        "--volume",
        f"{volume}:/code/models",
        "--env",
        "WORKSHOP_EPOCHS=1",
        "--env",
        "WORKSHOP_INITIAL_EPOCHS=1",
        "--env",
        f"WORKSHOP_API_KEY={api_key}",
        image,
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while (health := docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()) != "healthy":
            assert health in {"starting", "healthy"}, (
                f"container {health}:\n{docker('logs', name, check=False).stderr[-3000:]}"
            )
            assert time.monotonic() < deadline, f"not healthy after {READY_TIMEOUT} s"
            time.sleep(5)
        host_port = docker("port", name, "80/tcp").stdout.strip().splitlines()[0].rpartition(":")[2]
        yield {"name": name, "url": f"http://127.0.0.1:{host_port}", "api_key": api_key}
    finally:
        docker("rm", "--force", name, check=False)
        docker("volume", "rm", "--force", volume, check=False)


def test_runs_as_the_unprivileged_user(container):
    assert docker("exec", container["name"], "id", "-u").stdout.strip() != "0"


def test_predicts_and_trains(container):
    with httpx.Client(base_url=container["url"], timeout=60) as client:
        assert client.get("/predict/", params={"bill": 40.3, "flipper": 195}).status_code == 200
        image = DATA_DIR / "test_image" / "test_img7.png"
        assert (
            client.post("/predict/", files={"file": (image.name, image.read_bytes(), "image/png")}).status_code == 200
        )
        archive = DATA_DIR / "train_img.zip"
        accepted = client.post(
            "/train/",
            files=[("files", (archive.name, archive.read_bytes(), "application/zip"))],
            headers={"X-API-Key": container["api_key"]},
        )
        assert accepted.status_code == 202, accepted.text
        deadline = time.monotonic() + READY_TIMEOUT
        while (job := client.get(accepted.json()["url"]).json())["status"] not in {"succeeded", "failed"}:
            assert time.monotonic() < deadline
            time.sleep(2)
        assert job["status"] == "succeeded", job


def test_the_learners_dockerfile_builds():
    engine()
    tag = f"mnist_fastapi:test-{secrets.token_hex(4)}"
    try:
        docker(
            "build",
            "--file",
            str(PROJECT_ROOT / "solutions" / "part3" / "Dockerfile"),
            "--tag",
            tag,
            str(PROJECT_ROOT),
            timeout=BUILD_TIMEOUT,
        )
    finally:
        docker("image", "rm", "--force", tag, check=False)
