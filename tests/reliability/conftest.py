"""Fixtures for the reliability and security suites: one Part 3 service running for real (`fastapi
run`, API key set, debug logging) shared by the modules that only need one: each of them checks what
it changed itself, against its own snapshot. The seeded store and its per-module copy are in
tests/conftest.py.

The Part 3 tests' helpers (tests/part3/part3_support.py: seeding a store, starting the service in-
process or as a real `fastapi run`, waiting for jobs) are reused, not copied.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "part3"))

from part3_support import API_KEY, ServiceProcess, copy_store, wait_until


@pytest.fixture(scope="session")
def real_service(seeded_store, tmp_path_factory):
    """The Part 3 service as a real process on a loopback port, on its own copy of the seeded store;
    `.models_dir` is that store, `.log` its captured output."""
    models_dir = copy_store(seeded_store, tmp_path_factory.mktemp("real-service") / "models")
    service = ServiceProcess(models_dir, env={"WORKSHOP_API_KEY": API_KEY, "WORKSHOP_LOG_LEVEL": "debug"})
    service.models_dir = models_dir
    try:
        wait_until(
            lambda: (r := service.answers("/health/ready")) is not None and r.status_code == 200,
            "the Part 3 service is ready",
        )
        yield service
    finally:
        service.stop()
