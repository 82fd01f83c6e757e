"""Checks for part2/challenge_retrain: POST /retrain/ trains a new model from scratch."""

import pytest

from tests.part2_support import TrainingGate, as_upload, training_files

HINTS = [
    'A new route that trains a model from scratch: the same training, without a base model.',
    'Give `training` a flag (from_scratch=True) and add it to background_tasks in the new route.',
]

pytestmark = pytest.mark.slow  # the app trains a model at start-up


def test_retrain_trains_a_new_model_from_scratch(client, exercise, monkeypatch):
    gate = TrainingGate(monkeypatch)
    previous = exercise.ml_models[-1]
    count = len(exercise.ml_models)
    response = client.post("/retrain/")
    assert response.status_code == 200, response.text
    assert "message" in response.json()
    assert gate.bases == [None], "POST /retrain/ fine-tuned a model instead of building a new one"
    assert len(exercise.ml_models) == count + 1
    assert exercise.ml_models[-1] is not previous
    assert client.get("/info/").json() == {"Num of model in training": 0, "Num of trained models": count + 1}


def test_train_still_fine_tunes_the_newest_model(client, exercise, monkeypatch):
    gate = TrainingGate(monkeypatch)
    newest = exercise.ml_models[-1]
    response = client.post("/train/", files=as_upload(training_files(20)))
    assert response.status_code == 200, response.text
    assert gate.bases == [newest]


def test_retrain_is_a_post(client):
    assert client.get("/retrain/").status_code == 405
