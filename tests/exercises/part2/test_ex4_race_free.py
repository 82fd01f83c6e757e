"""Checks for part2/ex4_race_free: models in the store; a kept model; one training at a time."""

import pytest

from app import mnist
from app.store import ModelStore
from app.part2.serving import LatestModel
from tests.part2_support import as_upload, digit_image, good_model, two_trainings_at_once

HINTS = [
    'Save every trained model to the models/ folder and load the newest from it: a training never changes the file a prediction reads.',
    'Going further: two trainings at once both start from the same base; hold `store.training_lock()` from loading the base to publishing, and keep the served model in memory with `latest.get()`.',
]

pytestmark = pytest.mark.slow  # the app trains a model at start-up


def predict(client, digit: int = 7) -> dict:
    response = client.post("/predict/", files={"file": digit_image(digit)})
    assert response.status_code == 200, response.text
    return response.json()


def info(client) -> dict[str, int]:
    return client.get("/info/").json()


def test_the_first_model_is_in_the_store_before_the_first_request(client, exercise):
    assert exercise.store.versions() == [1]
    assert info(client) == {"Num of model in training": 0, "Num of trained models": 1}
    assert predict(client)["version"] == 1


def test_versions_are_numbered_folders_with_their_metadata(client, exercise):
    client.post("/retrain/")
    store = exercise.store
    visible = [entry.name for entry in store.path.iterdir() if not entry.name.startswith(".")]
    assert all(name.isdigit() or name == "ACTIVE" for name in visible), visible
    assert not [path for path in store.path.rglob("*") if " " in path.name or ":" in path.name]
    newest = store.get(store.latest())
    assert newest.metadata["parent"] is None  # /retrain/ starts from scratch
    assert newest.metadata["sha256"] and newest.metadata["data"]["size"] > 0
    assert 0 <= newest.metadata["metrics"]["accuracy"] <= 1


def test_predictions_keep_the_loaded_model_until_a_newer_version_appears(client, exercise, monkeypatch):
    store = exercise.store
    loads: list[int] = []
    load_from_disk = store.load
    monkeypatch.setattr(store, "load", lambda number, loader: loads.append(number) or load_from_disk(number, loader))
    served = predict(client)["version"]  # loads the newest version if it is not loaded yet
    assert served == store.active()
    loads.clear()
    for digit in (1, 2, 3):
        assert predict(client, digit)["version"] == served
    assert loads == [], f"a prediction loaded version(s) {loads} from disk instead of keeping the model"

    # A version published by anyone (here, straight to the store) serves from the next request on.
    new = mnist.publish(mnist.TrainingResult(good_model(), {}, served), {}, {}, {"source": "test"}, store).number
    results = {digit: predict(client, digit) for digit in range(10)}
    assert {result["version"] for result in results.values()} == {new}
    assert loads == [new], "the new version should be loaded once, by the first request that sees it"
    right = [digit for digit, result in results.items() if result["result"] == str(digit)]
    assert len(right) >= 9, results


def test_two_trainings_at_once_run_one_after_the_other_as_a_chain(client, exercise, monkeypatch):
    trained_before = len(exercise.store.versions())
    served = lambda: predict(client)["version"]  # noqa: E731
    gate, (base, first, second) = two_trainings_at_once(client, exercise.store, monkeypatch, 50, served)
    assert gate.parents == [base, first]
    assert info(client) == {"Num of model in training": 0, "Num of trained models": trained_before + 2}
    assert predict(client)["version"] == second


def test_bad_uploads_are_refused(client):
    assert client.post("/predict/", files={"file": ("x.png", b"not an image")}).status_code == 422
    assert client.post("/train/", files=as_upload([("img1.png", digit_image(1)[1])])).status_code == 422


def test_predict_with_an_empty_store_is_a_503_with_retry_after(client, exercise, monkeypatch, tmp_path):
    empty = ModelStore(mnist.MODEL_NAME, root=tmp_path)
    monkeypatch.setattr(exercise, "store", empty)
    monkeypatch.setattr(exercise, "latest", LatestModel(empty))
    response = client.post("/predict/", files={"file": digit_image(7)})
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
