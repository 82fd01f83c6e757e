"""Checks for part2/ex1_background: GET /train/ trains in the background; /info/ counts."""

import pytest

from tests.part2_support import PendingRequest, TrainingGate, wait_until

HINTS = [
    'A route can take `background_tasks: BackgroundTasks`; `background_tasks.add_task(training)` runs `training` after the answer is sent, so GET /train/ answers at once.',
    '/info/ answers {"Num of model in training": <trainings running>, "Num of trained models": <len(ml_models)>}.',
]

INFO_KEYS = {"Num of model in training", "Num of trained models"}


def info(client) -> dict[str, int]:
    response = client.get("/info/")
    assert response.status_code == 200, response.text
    return response.json()


def test_root_answers(client):
    response = client.get("/")
    assert response.status_code == 200, response.text
    assert response.json() == {"Hello": "World"}


def test_info_has_the_workshop_keys(client):
    counts = info(client)
    assert set(counts) == INFO_KEYS
    assert all(isinstance(value, int) and value >= 0 for value in counts.values())


@pytest.mark.slow
def test_train_answers_at_once_and_the_server_answers_while_it_trains(client, exercise, monkeypatch):
    before = info(client)
    gate = TrainingGate(monkeypatch, hold=True)
    request = PendingRequest(client, exercise.app, "GET", "/train/")
    try:
        # A background task starts after the answer is sent; a training run inside the route would
        # start first and hold the answer back until the test opens the gate.
        wait_until(lambda: request.answered.is_set() or gate.calls > 0, "GET /train/ answers or trains")
        assert request.answered.is_set(), "GET /train/ did not answer before its training ended"
        assert request.status == 200, request.body
        assert request.json() == {"message": "Training model in the background"}
        gate.wait_for(1)
        assert client.get("/").json() == {"Hello": "World"}
        assert info(client) == {**before, "Num of model in training": before["Num of model in training"] + 1}
    finally:
        gate.open()
        request.finish()
    assert info(client) == {
        "Num of model in training": before["Num of model in training"],
        "Num of trained models": before["Num of trained models"] + 1,
    }


@pytest.mark.slow
def test_each_train_request_adds_a_trained_model(client, exercise):
    before = info(client)["Num of trained models"]
    for _ in range(2):  # the TestClient returns once the app, background task included, is done
        assert client.get("/train/").status_code == 200
    assert info(client) == {"Num of model in training": 0, "Num of trained models": before + 2}
    assert len(exercise.ml_models) == before + 2
