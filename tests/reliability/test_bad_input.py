"""Bad input, never a 500, nothing lost: the corpus of bad_requests.py against every app that serves
its routes (the Part 1 and Part 2 solutions, their reference services, and the Part 3 service run
for real with `fastapi run`; Part 1's exercise 1 and Part 2's exercise 1 serve none of them).

Each case must get its documented status and a message naming the problem. Afterwards the app must
still answer a good request exactly as before (same model, same version), the stored versions and
their sha256s must be unchanged, no training must have started and no job must exist.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bad_requests import ALL, BOUNDS, CORPUS, UNITS, applies, digit_png, message, routes_of
from fastapi.testclient import TestClient
from part3_support import API_KEY
from reliability_support import send, store_state

from app import datasets
from app.paths import PROJECT_ROOT
from tests.fresh_modules import import_fresh, slow_if_it_imports_keras

SMALL_TRAINING = 256  # images the Part 2 apps' start-up trainings use here: the point is input handling
GOOD_PENGUIN = {"bill": "40.3", "flipper": "195"}


@dataclass(frozen=True)
class Target:
    path: str  # the app's file, relative to the project, or "part3" for the real service
    promises: frozenset[str] = ALL  # Part 1's exercise 2 takes any float, exercise 3 no units: by design
    store: bool = False  # serves from the model store rather than memory: its versions are compared
    seeded: bool = False  # starts on a copy of the seeded store (a digit model), not an empty one
    marks: list[Any] = field(default_factory=list)


TARGETS = [
    Target("solutions/part1/ex2_predict.py", promises=frozenset()),
    Target("solutions/part1/ex3_validation.py", promises=BOUNDS),
    Target("solutions/part1/challenge_units.py"),
    Target("app/part1/main.py", store=True),
    Target("solutions/part2/ex2_lifespan.py", promises=UNITS, marks=[pytest.mark.slow]),
    Target("solutions/part2/ex3_retrain.py", promises=UNITS, marks=[pytest.mark.slow]),
    Target("solutions/part2/ex4_race_free.py", promises=UNITS, store=True, seeded=True, marks=[pytest.mark.slow]),
    Target("solutions/part2/challenge_retrain.py", promises=UNITS, marks=[pytest.mark.slow]),
    Target("solutions/part2/challenge_startup.py", promises=UNITS, store=True, seeded=True, marks=[pytest.mark.slow]),
    Target("app/part2/main.py", promises=UNITS, store=True, seeded=True, marks=[pytest.mark.slow]),
    Target("part3", store=True, marks=[pytest.mark.slow]),
]


class Served:
    """One app under test, started once per target: its client, its routes and how to tell that
    nothing changed."""

    def __init__(self, target: Target, client, routes, models_dir: Path, module=None, key: str | None = None):
        self.target, self.client, self.routes, self.models_dir = target, client, routes, models_dir
        self.module, self.key = module, key
        self.initial: dict[str, object] = {}
        self.over_http = not isinstance(client, TestClient)  # a real server, reached over a socket

    def remember(self) -> "Served":
        self.initial = self.state()
        return self

    def good_answers(self) -> dict[str, object]:
        """A good request to each model route, answered by the model the app serves."""
        answers = {}
        if ("GET", "/predict/") in self.routes:
            answers["penguin"] = without_id(self.client.get("/predict/", params=GOOD_PENGUIN).json())
        if ("POST", "/predict/") in self.routes:
            response = self.client.post("/predict/", files={"file": ("test_img7.png", digit_png(7), "image/png")})
            answers["digit"] = without_id(response.json())
        return answers

    def state(self) -> dict[str, object]:
        state: dict[str, object] = {"answers": self.good_answers()}
        if self.target.store:
            state["store"] = store_state(self.models_dir)
        if self.module is not None and hasattr(self.module, "ml_models"):
            state["models in memory"] = [id(model) for model in self.module.ml_models]
        if self.module is not None and hasattr(self.module, "in_training"):
            state["trainings running"] = self.module.in_training.count
        if self.target.path == "part3":
            state["jobs"] = self.client.get("/jobs/").json()
        return state


def without_id(answer: dict) -> dict:
    """An answer without Part 3's prediction_id, which is new for every prediction."""
    return {key: value for key, value in answer.items() if key != "prediction_id"}


@pytest.fixture(scope="module", params=[pytest.param(t, id=t.path, marks=t.marks) for t in TARGETS])
def served(request, tmp_path_factory):
    target: Target = request.param
    models_dir = tmp_path_factory.mktemp("bad-input") / "models"
    if target.seeded:
        shutil.copytree(request.getfixturevalue("seeded_store"), models_dir)
    else:
        models_dir.mkdir()
    if target.path == "part3":
        service = request.getfixturevalue("real_service")
        routes = {
            (method, path)
            for path, item in service.get("/openapi.json").json()["paths"].items()
            for method in (m.upper() for m in item)
        }
        yield Served(target, service.client, routes, service.models_dir, key=API_KEY).remember()
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKSHOP_MODELS_DIR", str(models_dir))
        real_bundled = datasets.bundled_images
        patch.setattr(datasets, "bundled_images", lambda split: tuple(a[:SMALL_TRAINING] for a in real_bundled(split)))
        module = import_fresh(PROJECT_ROOT / target.path)
        with TestClient(module.app, raise_server_exceptions=False) as client:
            yield Served(target, client, routes_of(module.app), models_dir, module).remember()


def test_every_bad_request_gets_its_documented_4xx_and_nothing_is_lost(served):
    """Each case: its status and a message naming the problem. Then: a good request answered as
    before (same model, same version), same stored versions and sha256s, no training, no job."""
    cases = [case for case in CORPUS if applies(case, served.routes, served.target.promises)]
    assert cases, f"{served.target.path} serves none of the corpus' routes"
    failures = []
    for case in cases:
        response = send(served.client, case, served.key)
        status, keyword = case.over_http if served.over_http and case.over_http else (case.status, case.keyword)
        said = message(response)
        if response.status_code != status or keyword.lower() not in said:
            failures.append(f"{case.name}: {response.status_code} {said[:200]!r} (wanted {status}, '{keyword}')")
    assert not failures, f"{served.target.path}, {len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)
    assert served.initial["answers"], "the app must answer a good request"
    assert served.state() == served.initial


def test_what_an_app_does_not_promise_to_refuse_still_never_causes_a_500(served):
    """Part 1's exercise 2 takes any float by design (exercise 3 adds bounds, the challenge units):
    it may answer nan or "40mn" as it likes, but never with a server error. (Cases that would start
    a training in an app that ignores `epochs` are left out: for that app they are good requests.)"""
    cases = [
        case
        for case in CORPUS
        if (case.method, case.route) in served.routes
        and not applies(case, served.routes, served.target.promises)
        and not case.needs_key
    ]
    for case in cases:
        response = send(served.client, case, served.key)
        assert response.status_code < 500, f"{case.name}: {response.status_code} {response.text[:200]}"


LEFT_OUT = ["solutions/part1/ex1_hello.py", "solutions/part2/ex1_background.py"]


@pytest.mark.parametrize("path", [slow_if_it_imports_keras(PROJECT_ROOT / path, path) for path in LEFT_OUT])
def test_the_apps_left_out_serve_none_of_the_corpus_routes(path):
    routes = routes_of(import_fresh(PROJECT_ROOT / path).app)  # importing them trains nothing
    assert not [case.name for case in CORPUS if (case.method, case.route) in routes]


def test_the_corpus_is_large_and_distinct():
    names = [case.name for case in CORPUS]
    assert len(set(names)) == len(names) >= 30
