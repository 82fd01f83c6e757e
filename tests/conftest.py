"""Fixtures shared by the Part 3, reliability and browser suites: one seeded model store per test
session (its tiny models are trained once), a private copy of it per test module (`models_dir`), and
one real Part 3 service per session (`real_service`). And two rules for every test: the quick loop
imports no Keras, and no test but the exercise checks reads the learner's exercises/."""

import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests import exercise_guard  # watches exercises/ from here on: see the module

sys.path.insert(0, str(Path(__file__).resolve().parent / "part3"))  # part3_support, for every suite
# The suite's models are tiny (one epoch on a few hundred digits): the promotion gate would rightly
# refuse most of them. Every test but the gate's own (which pass realistic thresholds) has it accept
# all, so they test what they are about; trainer processes and served apps inherit this.
for variable, value in (
    ("WORKSHOP_GATE_FLOOR__MNIST", "0"),
    ("WORKSHOP_GATE_FLOOR__PENGUINS", "0"),
    ("WORKSHOP_GATE_MARGIN__MNIST", "1"),
    ("WORKSHOP_GATE_MARGIN__PENGUINS", "1"),
):
    os.environ.setdefault(variable, value)


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory):
    """A store with penguins version 1 and a tiny mnist version 1 (trained once per session)."""
    from part3_support import seed_store  # here, not at collection: an exercise check never pays for it

    folder = tmp_path_factory.mktemp("seeded") / "models"
    seed_store(folder)
    return folder


@pytest.fixture(scope="module")
def models_dir(seeded_store, tmp_path_factory):
    """A private copy of the seeded store for one test module."""
    from part3_support import copy_store

    return copy_store(seeded_store, tmp_path_factory.mktemp("module") / "models")


@pytest.fixture(scope="session")
def real_service(seeded_store, tmp_path_factory):
    """The Part 3 service as a real process (`fastapi run`, API key set, debug logging) on its own copy
    of the seeded store, shared by the browser, reliability and security suites: each test checks what
    it changed itself, against its own snapshot. `.models_dir` is its store, `.log` its output."""
    from part3_support import API_KEY, copy_store, serving_process

    models_dir = copy_store(seeded_store, tmp_path_factory.mktemp("real-service") / "models")
    with serving_process(models_dir, env={"WORKSHOP_API_KEY": API_KEY, "WORKSHOP_LOG_LEVEL": "debug"}) as service:
        yield service


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A real redis-server of this module's own (tests/redis_support.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from redis_support import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


# Fixtures that train a model or start a server: a test using one is slow, wherever it lives.
SLOW_FIXTURES = ("seeded_store", "redis_server", "s3_server")
MODEL_LIBRARIES = ("keras", "tensorflow")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items):
    for item in items:
        if any(name in SLOW_FIXTURES for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    give_each_test_its_own_node_id(items)


def give_each_test_its_own_node_id(items) -> None:
    """schemathesis names each operation's test `test_x[GET /path]` but gives them all one node id, and
    pytest-xdist (addopts: -n 2) runs one test per node id: the others would silently not run. Relies on
    pytest 9's private `Node._id` and `_pytest.nodeid`; a test in test_schemathesis.py fails without it."""
    from _pytest.nodeid import NodeId

    counts = Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1:
            item._id = NodeId.parse(f"{item.parent.nodeid}::{item.name}")


_LOADED_BEFORE = pytest.StashKey[set[str]]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    exercise_guard.guarding = not Path(str(item.path)).is_relative_to(exercise_guard.EXERCISE_CHECKS)
    item.stash[_LOADED_BEFORE] = _model_libraries_loaded()


def pytest_collection_finish(session):
    reads = exercise_guard.reads_of_exercises()
    if reads:
        raise pytest.UsageError(
            f"collecting the tests read the learner's exercises/ ({', '.join(reads)}): generate the starters "
            "into a temporary folder (workshop.exercises.write_exercises(folder)) instead"
        )


def _model_libraries_loaded() -> set[str]:
    return {name for name in MODEL_LIBRARIES if name in sys.modules}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """A test that read exercises/ outside the exercise checks fails. And the quick loop (`-m "not slow"`)
    trains nothing: a test not marked slow that imports Keras or TensorFlow (in a fixture, the test or
    its teardown) errors; what an earlier slow test loaded is not this test's doing, so only a new
    import counts."""
    result = yield
    exercise_guard.guarding = True
    reads = exercise_guard.reads_of_exercises()
    if reads:
        pytest.fail(
            f"read the learner's exercises/ ({', '.join(reads)}): a maintainers' test must pass whatever is there; "
            "generate the starters into a temporary folder (workshop.exercises.write_exercises(folder)) instead",
            pytrace=False,
        )
    loaded = _model_libraries_loaded() - item.stash.get(_LOADED_BEFORE, set())
    if loaded and item.get_closest_marker("slow") is None:
        pytest.fail(
            f"not marked slow but imported {', '.join(sorted(loaded))}: mark it (or its module)"
            " `pytest.mark.slow`, or have it import no model library",
            pytrace=False,
        )
    return result


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 on a free loopback port (tests/s3_support.py: AtomicMotoServer), and the AWS_* variables
    pointing boto3 at it for the session. `.client` is a boto3 client; `.endpoint` its URL."""
    import boto3

    from tests.s3_support import AtomicMotoServer, environment, s3_environment

    server = AtomicMotoServer().start()
    try:
        with environment(**s3_environment(server.endpoint, tmp_path_factory.mktemp("s3-cache"))):
            server.client = boto3.session.Session().client("s3", endpoint_url=server.endpoint)
            yield server
    finally:
        server.stop()


@pytest.fixture
def bucket_url(s3_server):
    """A new, empty bucket on the session's S3 server, as s3://<bucket>/models."""
    from tests.s3_support import new_bucket

    return f"s3://{new_bucket(s3_server.client)}/models"
