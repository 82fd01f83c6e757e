"""Checks for part2/challenge_startup: at start-up the saved models are served; a training happens
only when the store is empty."""

import pytest
from fastapi.testclient import TestClient

from app import mnist
from tests.part2_support import TrainingGate, digit_image, good_model, import_again

HINTS = [
    'In the lifespan, look at what is saved first: train only when there is no model yet.',
    '`store.active()` is None when the store has no version; `latest.get()` loads the one it serves.',
]

pytestmark = pytest.mark.slow  # the app trains a model at start-up


def predict(client, digit: int = 7) -> dict:
    response = client.post("/predict/", files={"file": digit_image(digit)})
    assert response.status_code == 200, response.text
    return response.json()


def test_an_empty_store_gets_one_first_training(client, exercise):
    assert exercise.store.versions() == [1]
    assert client.get("/info/").json() == {"Num of model in training": 0, "Num of trained models": 1}
    assert predict(client)["version"] == 1


def test_a_restart_serves_the_newest_saved_model_without_training(client, exercise, monkeypatch):
    store = exercise.store
    newest = mnist.publish(mnist.TrainingResult(good_model(), {}, None), {}, {}, {"source": "test"}, store).number
    versions = store.versions()
    gate = TrainingGate(monkeypatch)
    restarted = import_again(exercise)
    with TestClient(restarted.app) as again:
        results = {digit: predict(again, digit) for digit in range(10)}
        assert again.get("/info/").json() == {"Num of model in training": 0, "Num of trained models": len(versions)}
    assert gate.calls == 0, "the restart trained a model although the store had some"
    assert store.versions() == versions
    assert {result["version"] for result in results.values()} == {newest}
    right = [digit for digit, result in results.items() if result["result"] == str(digit)]
    assert len(right) >= 9, results


def test_a_pinned_version_is_served_at_start_up(client, exercise, monkeypatch):
    store = exercise.store
    store.activate(1)
    restarted = import_again(exercise)
    gate = TrainingGate(monkeypatch)
    with TestClient(restarted.app) as again:
        assert predict(again)["version"] == 1
    assert gate.calls == 0
