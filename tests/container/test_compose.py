"""compose.yaml runs the image the Dockerfile builds, as the Dockerfile means it to run, and can scale."""

import os
import shutil
import subprocess
from pathlib import PurePosixPath

import pytest
import yaml

from app.dockerfile import Dockerfile
from app.paths import PROJECT_ROOT


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.read(PROJECT_ROOT / "Dockerfile").target()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def service(compose) -> dict:
    services = compose["services"]
    assert list(services) == ["api"], list(services)
    return services["api"]


def test_builds_the_top_level_dockerfile(service):
    build = service["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (PROJECT_ROOT / context / dockerfile).resolve() == (PROJECT_ROOT / "Dockerfile").resolve()


def test_the_models_live_on_a_named_volume(compose, service, dockerfile):
    models = dockerfile.env()["WORKSHOP_MODELS_DIR"]
    mounts = dict(reversed(entry.split(":")[:2]) for entry in service["volumes"])
    assert models in mounts, f"nothing mounted on {models}: {service['volumes']}"
    assert mounts[models] in (compose.get("volumes") or {}), f"{mounts[models]} is not a declared named volume"


def test_the_healthcheck_is_the_dockerfiles(service, dockerfile):
    test = service["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1:] == dockerfile.healthcheck_command(), (
        "compose's healthcheck and the Dockerfile's HEALTHCHECK differ: keep them the same command"
    )
    flags = dict(dockerfile.last("HEALTHCHECK").flags)
    assert service["healthcheck"]["start_period"] == flags["start-period"]


def test_publishes_the_port_the_service_listens_on(service, dockerfile):
    cmd = dockerfile.last("CMD").exec_form
    container_port = cmd[cmd.index("--port") + 1]
    [mapping] = service["ports"]
    host, _, container = mapping.rpartition(":")
    assert container == container_port
    # A variable host side lets several replicas take one port each from a range (WORKSHOP_PORTS=8001-8002).
    assert host.startswith("${") and "container_name" not in service, "a fixed host port or name stops --scale"


def test_the_api_key_comes_from_the_environment_never_the_file(service):
    environment = service["environment"]
    entries = environment if isinstance(environment, list) else [f"{k}={v}" if v is not None else k for k, v in environment.items()]
    keys = [entry for entry in entries if entry.split("=")[0] == "WORKSHOP_API_KEY"]
    assert keys, "pass WORKSHOP_API_KEY through to the service"
    assert all(entry == "WORKSHOP_API_KEY" or entry.partition("=")[2].startswith("${") for entry in keys), (
        f"{keys}: a key written in compose.yaml ends up in git; pass it from the shell"
    )


def test_mounts_nothing_over_the_code(service, dockerfile):
    workdir = dockerfile.workdir()
    for entry in service["volumes"]:
        target = PurePosixPath(entry.split(":")[1])
        assert target != workdir and not workdir.is_relative_to(target), f"{entry} hides the image's code"


def test_docker_compose_accepts_it_when_available(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed here, so compose.yaml is only checked as YAML")
    env = {**os.environ, "WORKSHOP_PORTS": "8001-8002", "WORKSHOP_API_KEY": "not-a-real-key"}
    result = subprocess.run([docker, "compose", "config", "--quiet"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
