"""compose.yaml runs the images the Dockerfile builds, as the Dockerfile means them to run: Redis with
append-only persistence, two API replicas (the `serve` target) and a trainer (the `train` target)
on one models volume, all pointed at that Redis; and, in the `objectstore` profile, the same with the
model store in MinIO (a bucket made at start, WORKSHOP_MODELS_URL, credentials from the shell)."""

import os
import shutil
import subprocess
from pathlib import PurePosixPath

import pytest
import yaml

from app.paths import PROJECT_ROOT
from workshop.dockerfile import Dockerfile


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.read(PROJECT_ROOT / "Dockerfile").target()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())


TARGETS = {"api": "serve", "trainer": "train"}


OBJECTSTORE = {"minio", "minio-bucket", "api-s3", "trainer-s3"}
OBJECTSTORE_TARGETS = {"api-s3": "serve", "trainer-s3": "train"}


@pytest.fixture(scope="module")
def service(compose) -> dict:
    services = compose["services"]
    default = sorted(name for name, entry in services.items() if not entry.get("profiles"))
    assert default == ["api", "redis", "trainer"], list(services)
    return services["api"]


def environment_of(service: dict) -> dict[str, str | None]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return {entry.partition("=")[0]: entry.partition("=")[2] if "=" in entry else None for entry in environment}
    return environment


@pytest.mark.parametrize("name", TARGETS)
def test_builds_its_target_of_the_top_level_dockerfile(compose, name):
    build = compose["services"][name]["build"]
    assert (PROJECT_ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve() == (
        PROJECT_ROOT / "Dockerfile"
    ).resolve()
    assert build["target"] == TARGETS[name]
    assert TARGETS[name] in Dockerfile.read(PROJECT_ROOT / "Dockerfile").stages()


@pytest.mark.parametrize("name", TARGETS)
def test_the_models_live_on_a_named_volume_and_the_queue_in_redis(compose, dockerfile, name):
    service = compose["services"][name]
    models = dockerfile.env()["WORKSHOP_MODELS_DIR"]
    mounts = dict(reversed(entry.split(":")[:2]) for entry in service["volumes"])
    assert models in mounts, f"nothing mounted on {models}: {service['volumes']}"
    assert mounts[models] in (compose.get("volumes") or {}), f"{mounts[models]} is not a declared named volume"
    assert environment_of(service)["WORKSHOP_QUEUE_URL"].startswith("redis://redis:")
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_redis_is_the_official_image_with_append_only_persistence(compose):
    redis = compose["services"]["redis"]
    assert redis["image"].split(":")[0] in ("redis", "docker.io/library/redis")
    assert "--appendonly" in redis["command"] and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(
        entry.split(":")[1] == "/data" and entry.split(":")[0] in compose["volumes"] for entry in redis["volumes"]
    )
    assert "healthcheck" in redis


def test_two_api_replicas(service):
    assert service["deploy"]["replicas"] == 2


def test_the_healthcheck_is_the_dockerfiles(service, dockerfile):
    test = service["healthcheck"]["test"]
    serve = Dockerfile.read(PROJECT_ROOT / "Dockerfile").target("serve")
    assert serve.healthcheck_command() == dockerfile.healthcheck_command()
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


def test_the_api_key_comes_from_the_environment_never_the_file(compose, service):
    environment = environment_of(service)
    assert "WORKSHOP_API_KEY" in environment, "pass WORKSHOP_API_KEY through to the service"
    key = environment["WORKSHOP_API_KEY"]
    assert key is None or key.startswith("${"), (
        f"{key}: a key written in compose.yaml ends up in git; pass it from the shell"
    )
    assert not environment_of(compose["services"]["trainer"]).get("WORKSHOP_API_KEY"), "a trainer needs no key"


def test_mounts_nothing_over_the_code(service, dockerfile):
    workdir = dockerfile.workdir()
    for entry in service["volumes"]:  # the trainer's are the same (one anchor in compose.yaml)
        target = PurePosixPath(entry.split(":")[1])
        assert target != workdir and not workdir.is_relative_to(target), f"{entry} hides the image's code"


def test_docker_compose_accepts_it_when_available(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker compose plugin is not installed here, so compose.yaml is only checked as YAML")
    env = {**os.environ, "WORKSHOP_PORTS": "8001-8002", "WORKSHOP_API_KEY": "not-a-real-key"}
    result = subprocess.run(
        [docker, "compose", "config", "--quiet"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_objectstore_profile_starts_nothing_by_default(compose):
    services = compose["services"]
    assert OBJECTSTORE <= set(services)
    for name in OBJECTSTORE:
        assert services[name]["profiles"] == ["objectstore"], name


def test_minio_keeps_its_data_on_a_volume_and_says_when_it_is_ready(compose):
    minio = compose["services"]["minio"]
    assert minio["image"].split(":")[0] in ("minio/minio", "quay.io/minio/minio") and ":" in minio["image"]
    assert minio["command"][:2] == ["server", "/data"]
    assert any(
        entry.split(":")[1] == "/data" and entry.split(":")[0] in compose["volumes"] for entry in minio["volumes"]
    )
    assert minio["healthcheck"]["test"][0] == "CMD"
    password = environment_of(minio)["MINIO_ROOT_PASSWORD"]
    assert password.startswith("${"), "MinIO's password comes from the shell, never the file"


def test_the_bucket_the_store_names_is_made_before_any_api_or_trainer_starts(compose):
    services = compose["services"]
    maker = services["minio-bucket"]
    assert maker["command"] == ["python", "-m", "app.storage.make_bucket"]
    assert (PROJECT_ROOT / "app" / "storage" / "make_bucket.py").exists()
    assert maker["depends_on"]["minio"]["condition"] == "service_healthy"
    assert environment_of(maker)["WORKSHOP_MODELS_URL"] == environment_of(services["api-s3"])["WORKSHOP_MODELS_URL"]
    for name in OBJECTSTORE_TARGETS:
        assert services[name]["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", OBJECTSTORE_TARGETS)
def test_the_objectstore_apis_and_trainer_read_the_store_from_minio(compose, name):
    service = compose["services"][name]
    environment = environment_of(service)
    assert service["build"]["target"] == OBJECTSTORE_TARGETS[name]
    assert environment["WORKSHOP_MODELS_URL"].startswith("s3://")
    assert environment["AWS_ENDPOINT_URL"].startswith("http://minio:")
    assert environment["WORKSHOP_QUEUE_URL"].startswith("redis://redis:")
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert environment[variable].startswith("${"), f"{variable} comes from the shell, never the file"
    # No volume at all: nothing of theirs needs a shared disk (Redis and the object store hold it all).
    assert service["volumes"] == []


def test_the_objectstore_apis_take_other_ports_and_keep_the_dockerfiles_healthcheck(compose, dockerfile):
    api = compose["services"]["api-s3"]
    [mapping] = api["ports"]
    assert mapping.startswith("${") and mapping != compose["services"]["api"]["ports"][0]
    assert api["healthcheck"]["test"][1:] == dockerfile.healthcheck_command()
    assert api["deploy"]["replicas"] == 2
