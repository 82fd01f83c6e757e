"""Checks for part2/challenge_retrain: a retrain endpoint trains a new model from scratch.

The workshop's step: a `retrain` endpoint trains a new model (no base) in the background, while
/train/ still fine-tunes the newest. Going further: it is a POST, as a request that changes the
server is: a link prefetched by a browser or followed by a crawler must not start a training."""

import pytest

from tests.exercises.expect import expect, expect_status, shown
from tests.part2_support import as_upload, training_files

HINTS = [
    'A new route that trains a model from scratch: the same training, starting from `new_model()` instead of `ml_models[-1]`.',
    'Give `training` a flag (from_scratch=True) and add it to background_tasks in the new route.',
]

pytestmark = pytest.mark.slow  # the app trains a model at start-up


def retrain(client):
    response = client.post("/retrain/")
    if response.status_code == 405:  # a GET endpoint does the workshop's step too
        response = client.get("/retrain/")
    return response


def test_retrain_trains_a_new_model_from_scratch(client, exercise, trainings):
    before = list(exercise.ml_models)
    trained = client.get("/info/").json()["Num of trained models"]
    response = retrain(client)
    expect_status(response, 200, "POST (or GET) /retrain/")
    expect(len(trainings.new_models) == 1, f"/retrain/ should start 1 training; it started {len(trainings.new_models)}")
    expect(all(trainings.new_models[0] is not model for model in before),
           "/retrain/ should train a new model, not fine-tune one of ml_models")
    counts = client.get("/info/").json()
    expect(counts == {"Num of model in training": 0, "Num of trained models": trained + 1},
           f"after the retraining, /info/ should count 0 in training and {trained + 1} trained; it answered {shown(counts)}")


def test_train_still_fine_tunes_the_newest_model(client, exercise, trainings):
    newest = exercise.ml_models[-1]
    expect_status(client.post("/train/", files=as_upload(training_files(20))), 200, "POST /train/ with 20 images")
    expect(bool(trainings.new_models) and trainings.new_models[0] is newest,
           "POST /train/ should still fine-tune the newest model (ml_models[-1])")


@pytest.mark.going_further(
    "a GET must change nothing: a browser's prefetch or a crawler following a link would start trainings",
    hint="@app.post(\"/retrain/\")",
)
def test_retrain_is_a_post(client, trainings):
    expect_status(client.get("/retrain/"), 405, "GET /retrain/ (only POST should train)")
    expect(not trainings.new_models, "GET /retrain/ started a training")
