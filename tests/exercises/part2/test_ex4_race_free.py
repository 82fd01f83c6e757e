"""Checks for part2/ex4_race_free: trained models are saved in models/, never changed by a training.

The workshop's step: every trained model is saved as a file under models/ (from start-up on), /info/
counts them, predictions answer from the saved models, and two trainings at once each save their own
model while predictions keep answering. Going further: numbered versions with their metadata (the
workshop's `model_{datetime.now()}.keras` has spaces and colons), a model kept in memory (the
workshop loads it for every prediction), and two trainings that run one after the other as a chain
(the workshop's both fine-tune the same base, and one's work is lost from the line of models)."""

import contextlib
import threading
from collections.abc import Iterator

import pytest

from app import promotion
from app.models import mnist
from app.part2.serving import LatestModel
from app.store import ModelStore
from tests.exercises.expect import expect, expect_status, shown
from tests.part2_support import (
    as_upload, digit_image, expect_well_trained_answers, good_model, saved_models, training_files, wait_until,
)

HINTS = [
    'Save every trained model as a file in models/ and fine-tune, and predict with, the newest saved one loaded from its file: '
    'a training then never changes the model a prediction uses. While the app serves, models/ is the one in models/exercises/.',
    'In `training`: `model = keras.saving.load_model(f"models/{ml_models[-1]}")` when there is a model, then after `fit`, '
    '`model_name = f"model_{datetime.now()}.keras"`, `model.save(f"models/{model_name}")` and `ml_models.append(model_name)`.',
    'In POST /predict/: `model = keras.saving.load_model(f"models/{ml_models[-1]}")`, then `model.predict(image)` as before.',
    "Going further, with this project's store: `with store.training_lock(): parent, model = load_base(store)` (a copy of the "
    "served version; None, None when there is none), fit it, `publish_trained(store, ...)`; in predict, `served = latest.get()`.",
]

pytestmark = pytest.mark.slow  # the app trains a model at start-up
TRAINED = "Num of trained models"


@contextlib.contextmanager
def two_trainings_held(client, trainings, files) -> Iterator[list]:
    """Two POST /train/ at once, held before fitting until the block ends; yields their answers (filled
    once both are done)."""
    answers: list = []
    requests = [threading.Thread(target=lambda: answers.append(client.post("/train/", files=files))) for _ in range(2)]
    trainings.hold()
    try:
        for request in requests:
            request.start()
        trainings.wait_for(1)
        wait_until(lambda: info(client)["Num of model in training"] == 2, "both trainings are requested")
        yield answers
    finally:
        trainings.open()
        for request in requests:
            request.join()


def predict(client, digit: int = 7) -> dict:
    response = client.post("/predict/", files={"file": digit_image(digit)})
    expect_status(response, 200, f"POST /predict/ with test_img{digit}.png")
    body = response.json()
    expect(body.get("result") in [str(d) for d in range(10)], f"POST /predict/ should answer a digit; it answered {shown(body)}")
    return body


def info(client) -> dict[str, int]:
    response = client.get("/info/")
    expect_status(response, 200, "GET /info/")
    return response.json()


def test_the_first_model_is_saved_before_the_first_request(client, check_folder):
    saved = saved_models(check_folder)
    expect(len(saved) == 1, f"after start-up, models/ should hold 1 saved model (a .keras file); it holds {len(saved)}")
    for path in saved:
        expect(path.is_relative_to(check_folder / "models" / "exercises"),
               f"the exercise's models should stay under models/exercises/; {path.name} is in {path.parent.relative_to(check_folder)}/: "
               "keep `lifespan=runs_in_exercise_folder(lifespan)` in `app = FastAPI(...)`")
    expect(info(client)[TRAINED] == 1, f"after start-up, GET /info/ should count 1 trained model; it counted {info(client)[TRAINED]}")
    predict(client)


def test_a_training_saves_one_more_model(client, check_folder):
    before, trained = len(saved_models(check_folder)), info(client)[TRAINED]
    expect_status(client.post("/train/", files=as_upload(training_files(20))), 200, "POST /train/ with 20 images")
    now = len(saved_models(check_folder))
    expect(now == before + 1, f"a training should save 1 more model in models/: {before} before, {now} after")
    expect(info(client)[TRAINED] == trained + 1, f"GET /info/ should count {trained + 1} trained models; it counted {info(client)[TRAINED]}")
    predict(client)


def test_two_trainings_at_once_each_save_a_model_while_predictions_answer(client, check_folder, trainings):
    before, trained = len(saved_models(check_folder)), info(client)[TRAINED]
    with two_trainings_held(client, trainings, as_upload(training_files(20))) as answers:
        predict(client)  # a training never holds up, nor changes, the model that answers
    statuses = [answer.status_code for answer in answers]
    expect(statuses == [200, 200], f"both POST /train/ should answer 200; they answered {statuses[0]} and {statuses[1]}")
    now = len(saved_models(check_folder))
    expect(now == before + 2, f"two trainings should save 2 more models: {before} before, {now} after")
    expect(info(client)[TRAINED] == trained + 2, f"GET /info/ should count {trained + 2} trained models; it counted {info(client)[TRAINED]}")


@pytest.mark.going_further(
    "`model_{datetime.now()}.keras` puts spaces and colons in names (invalid on Windows, quoted in every shell) "
    "and shows readers half-written files; a numbered folder per version, renamed into place, does neither",
    hint="publish through app/store.py's ModelStore: `train_and_publish(store, ...)` writes models/exercises/mnist/<n>/ with its metadata",
)
def test_versions_are_numbered_folders_with_their_metadata(client, exercise):
    expect(hasattr(exercise, "store"), "going further keeps the models in a ModelStore named `store`")
    client.post("/retrain/")
    store = exercise.store
    expect(bool(store.versions()), "after POST /retrain/, the store should hold the version it trained; it holds none yet: "
           "publish every trained model to `store`")
    visible = [entry.name for entry in store.path.iterdir() if not entry.name.startswith(".")]
    expect(all(name.isdigit() or name == "ACTIVE" for name in visible),
           f"the store should hold numbered versions only; it holds {', '.join(sorted(visible))}")
    odd = [path.name for path in store.path.rglob("*") if " " in path.name or ":" in path.name]
    expect(not odd, f"no saved name should hold a space or a colon: {', '.join(odd)}")
    newest = store.get(store.latest())
    expect(newest.metadata["parent"] is None, "POST /retrain/ should start from scratch: its version should have no parent")
    expect(bool(newest.metadata["sha256"]) and newest.metadata["data"]["size"] > 0, "each version should record its sha256 and data")


@pytest.mark.going_further(
    "loading the .keras file for every prediction costs about 155 ms each, against 2 ms for a model kept in memory",
    hint="`served = latest.get()` keeps the loaded model and loads again only when the store serves a newer version",
)
def test_predictions_keep_the_loaded_model_until_a_newer_version_appears(client, exercise, monkeypatch):
    expect(hasattr(exercise, "store"), "going further keeps the models in a ModelStore named `store`")
    store = exercise.store
    loads: list[int] = []
    load_from_disk = store.load
    monkeypatch.setattr(store, "load", lambda number, loader: loads.append(number) or load_from_disk(number, loader))
    served = predict(client).get("version")  # loads the newest version if it is not loaded yet
    expect(store.active() is not None, "the store serves no version yet: publish every trained model to `store`")
    expect(served == store.active(),
           f"predictions should come from version {store.active()}, the one the store serves, and say so as \"version\"; "
           f"the answer's version was {shown(served)}")
    loads.clear()
    for digit in (1, 2, 3):
        predict(client, digit)
    expect(loads == [], f"a prediction loaded version {loads[0] if loads else ''} from disk instead of keeping the model it had")
    # A version published by anyone (here, straight to the store) serves from the next request on.
    new = promotion.publish(mnist.MODEL, mnist.TrainingResult(good_model()), {"parent": served}, store).number
    results = {digit: predict(client, digit) for digit in range(10)}
    expect_well_trained_answers(results, new)
    expect(loads == [new], f"the new version {new} should be loaded once, by the first request that sees it; "
           f"it was loaded {loads.count(new)} times")


@pytest.mark.going_further(
    "two trainings at once both fine-tune the same base: the line of models loses one's work",
    hint="hold `store.training_lock()` from `load_base(store)` to `publish_trained(...)`",
)
def test_two_trainings_at_once_run_one_after_the_other_as_a_chain(client, exercise, trainings):
    expect(hasattr(exercise, "store"), "going further keeps the models in a ModelStore named `store`")
    store = exercise.store
    base, before, trained_before = store.active(), store.versions(), info(client)[TRAINED]
    with two_trainings_held(client, trainings, as_upload(training_files(50))):
        expect(len(trainings.new_models) == 1, "the second training began to fit while the first still ran: "
               "hold `store.training_lock()` from loading the base to publishing")
        expect(predict(client).get("version") == base, f"predictions should keep answering from version {base} during a training")
    new = store.versions()[len(before):]
    expect(len(new) == 2, f"two trainings should publish 2 versions; they published {len(new)}")
    first, second = new
    parents = [store.get(first).metadata["parent"], store.get(second).metadata["parent"]]
    expect(parents == [base, first], f"the second training should start from the first's result: version {second}'s parent "
           f"should be {first}; the parents are {shown(parents)}")
    expect(info(client) == {"Num of model in training": 0, TRAINED: trained_before + 2},
           f"/info/ should count 0 in training and {trained_before + 2} trained; it answered {shown(info(client))}")
    expect(predict(client).get("version") == second, f"predictions should come from the newest version, {second}")


@pytest.mark.going_further(
    "before any model exists, a prediction is a 503 with Retry-After, not a 500",
    hint="`latest.get()` raises `no_model_yet()` when the store is empty",
)
def test_predict_with_an_empty_store_is_a_503_with_retry_after(client, exercise, monkeypatch, tmp_path):
    expect(hasattr(exercise, "store"), "going further keeps the models in a ModelStore named `store`")
    empty = ModelStore(mnist.MODEL_NAME, root=tmp_path)
    monkeypatch.setattr(exercise, "store", empty)
    monkeypatch.setattr(exercise, "latest", LatestModel(empty))
    response = client.post("/predict/", files={"file": digit_image(7)})
    expect_status(response, 503, "POST /predict/ with an empty store")
    expect(int(response.headers.get("Retry-After", 0)) > 0, "the 503 should say when to retry (Retry-After)")


@pytest.mark.going_further(
    "one bad file must not crash a prediction or a training (a 500)",
    hint="`read_digit(file)` and `read_training_images(files)` (app/part2/uploads.py)",
)
def test_bad_uploads_are_refused(client):
    expect_status(client.post("/predict/", files={"file": ("x.png", b"not an image")}), 422, "POST /predict/ with x.png (not an image)")
    expect_status(client.post("/train/", files=as_upload([("img1.png", digit_image(1)[1])])), 422, "POST /train/ with img1.png (no label)")
