"""Checks for part2/challenge_startup: at start-up the saved models are served; a training happens
only when there is none.

The workshop's step: the first start (nothing saved) trains one model; a restart finds the saved
models, trains nothing, counts them in /info/ and predicts with them. Going further: the newest
version is served whoever published it, and a version pinned in the store is served at start-up."""

import pytest

from app import promotion
from app.models import mnist
from tests.exercises.expect import CheckClient, expect, expect_status, shown
from tests.fresh_modules import import_fresh
from tests.part2_support import digit_image, expect_well_trained_answers, good_model, saved_models

HINTS = [
    'Bring your exercise 4 over first (its training and its POST /predict/ go at the TODOs so marked); then, in the '
    'lifespan, look at what is saved before training: train only when there is no model yet.',
    'The workshop way: `ml_models.extend(sorted(name for name in os.listdir("models") if name.endswith(".keras")))`, '
    'then `training()` only `if not ml_models` (while the app serves, models/ is the one in models/exercises/).',
    "With this project's store: `ml_models.extend(store.versions())`, `training()` only when `store.active() is None`, "
    "then `latest.get()` loads the version the store serves.",
]

pytestmark = pytest.mark.slow  # the app trains a model at start-up
TRAINED = "Num of trained models"


def predict(client, digit: int = 7) -> dict:
    response = client.post("/predict/", files={"file": digit_image(digit)})
    expect_status(response, 200, f"POST /predict/ with test_img{digit}.png")
    return response.json()


def test_an_empty_folder_gets_one_first_training(client, check_folder, fit_gate):
    expect(fit_gate.calls == 1, f"the first start, with nothing saved, should train 1 model; it trained {fit_gate.calls}")
    expect(len(saved_models(check_folder)) == 1, "the first model should be saved under models/ (a .keras file)")
    counts = client.get("/info/").json()
    expect(counts.get(TRAINED) == 1, f"after the first start, GET /info/ should count 1 trained model; it answered {shown(counts)}")
    predict(client)


def test_a_restart_trains_nothing_and_serves_the_saved_models(client, exercise, check_folder, trainings):
    saved = len(saved_models(check_folder))
    restarted = import_fresh(exercise.__file__)
    with CheckClient(restarted.app) as again:
        expect(not trainings.new_models, f"a restart with {saved} saved model(s) should train nothing; it trained {len(trainings.new_models)}")
        counts = again.get("/info/").json()
        expect(counts.get(TRAINED) == saved, f"after a restart, GET /info/ should count the {saved} saved model(s); it answered {shown(counts)}")
        body = predict(again)
        expect(body.get("result") in [str(d) for d in range(10)], f"POST /predict/ should answer a digit; it answered {shown(body)}")
    expect(len(saved_models(check_folder)) == saved, "a restart should save no new model")


@pytest.mark.going_further(
    "the store decides what serves: a version published by the notebook or another process serves after a restart",
    hint="`latest.get()` in the lifespan loads the version `store.active()` names",
)
def test_a_restart_serves_the_newest_version_of_the_store(client, exercise, trainings):
    expect(hasattr(exercise, "store"), "going further keeps the models in a ModelStore named `store`")
    store = exercise.store
    newest = promotion.publish(mnist.MODEL, mnist.TrainingResult(good_model()), {}, store).number
    restarted = import_fresh(exercise.__file__)
    with CheckClient(restarted.app) as again:
        results = {digit: predict(again, digit) for digit in range(10)}
    expect(not trainings.new_models, "the restart trained a model although the store had some")
    expect_well_trained_answers(results, newest)


@pytest.mark.going_further(
    "rolling back is pinning an older version (ModelStore.activate): the start-up must respect it",
    hint="serve `store.active()`, not the newest folder",
)
def test_a_pinned_version_is_served_at_start_up(client, exercise, trainings):
    expect(hasattr(exercise, "store"), "going further keeps the models in a ModelStore named `store`")
    exercise.store.activate(1)
    restarted = import_fresh(exercise.__file__)
    with CheckClient(restarted.app) as again:
        version = predict(again).get("version")
        expect(version == 1, f"the pinned version 1 should answer, and say so as \"version\"; the answer's version was {shown(version)}")
    expect(not trainings.new_models, "the restart trained a model although the store had some")
