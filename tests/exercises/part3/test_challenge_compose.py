"""Checks for part3/challenge_compose: the container of exercises 1 and 2, run by Docker Compose."""

from pathlib import PurePosixPath

import pytest

HINTS = [
    'compose.yaml: one service built from the Dockerfile, port 80 published, the models on a named volume.',
    'A top-level `volumes:` section declares the named volume the service mounts.',
]

MODELS = PurePosixPath("/code/models")


@pytest.fixture(scope="module")
def service(compose) -> dict:
    services = compose.get("services") or {}
    assert len(services) == 1, f"define one service under `services:` (found {list(services)})"
    name, definition = next(iter(services.items()))
    assert definition.get("image") == "mnist_fastapi" or "build" in definition, (
        f"service {name}: run the image of exercise 1 (image: mnist_fastapi)"
    )
    return definition


def _port_pairs(service) -> list[tuple[str, str]]:
    """(host, container) for each entry of `ports:`, short ("80:80") or long ({published, target}) syntax."""
    pairs = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            pairs.append((str(entry.get("published", "")), str(entry.get("target", ""))))
        else:
            *host, container = str(entry).split(":")
            pairs.append((host[-1] if host else "", container.split("/")[0]))
    return pairs


def _volume_mounts(service) -> list[tuple[str, str]]:
    """(source, target) for each entry of `volumes:`, short ("name:/path[:ro]") or long syntax."""
    mounts = []
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((str(entry.get("source", "")), str(entry.get("target", ""))))
        else:
            parts = str(entry).split(":")
            mounts.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return mounts


def _listed(entries) -> str:
    return ", ".join(f'"{entry}"' for entry in entries or []) or "none"


def test_publishes_port_80(service):
    assert ("80", "80") in _port_pairs(service), (
        f'publish the container\'s port 80 on the host\'s port 80: ports: ["80:80"] '
        f"(the service's ports: {_listed(service.get('ports'))})"
    )


def test_mounts_a_named_volume_on_the_models_folder(service):
    mounts = dict((PurePosixPath(target), source) for source, target in _volume_mounts(service))
    assert MODELS in mounts, f"mount a volume on {MODELS} (the service's volumes: {_listed(service.get('volumes'))})"
    source = mounts[MODELS]
    assert source and not source.startswith((".", "/", "~", "$")), (
        f"{source}:{MODELS} is a bind mount of a folder of your machine; use a named volume, e.g. models:{MODELS}"
    )


def test_declares_the_named_volume(compose, service):
    mounts = dict((PurePosixPath(target), source) for source, target in _volume_mounts(service))
    declared = compose.get("volumes") or {}
    assert MODELS in mounts, (
        f"mount a named volume on {MODELS} first (e.g. models:{MODELS}), then declare it under a top-level `volumes:` key"
    )
    assert mounts[MODELS] in declared, (
        f"declare the volume `{mounts[MODELS]}` under a top-level `volumes:` key "
        f"(the volumes declared there: {_listed(declared)})"
    )
