"""Checks for part2/ex1_background: GET /train/ trains in the background; /info/ counts.

The workshop's step: GET /train/ answers at once, the server answers while the model trains, and
/info/ counts the trainings running and the models trained. Going further: the count stays right when
a training fails (the workshop's `num_train` stays up for good)."""

import pytest

from tests.exercises.expect import expect, expect_json, expect_status, shown
from tests.part2_support import PendingRequest, wait_until

HINTS = [
    'A route can take `background_tasks: BackgroundTasks`; `background_tasks.add_task(training)` runs `training` after the answer is sent, so GET /train/ answers at once.',
    '/info/ answers {"Num of model in training": num_train, "Num of trained models": len(ml_models)}.',
    "`training` is the workshop's: `global num_train`, `num_train += 1`; `(x_train, y_train), _ = mnist_load_data()` (the workshop's `keras.datasets.mnist.load_data()` needs internet); images `astype(\"float32\") / 255` and `np.expand_dims(..., -1)`; labels `keras.utils.to_categorical(y_train, 10)`.",
    "The model: `keras.Sequential([keras.Input(shape=(28, 28, 1)), Conv2D(32, 3x3, relu), MaxPooling2D(2x2), Conv2D(64, 3x3, relu), MaxPooling2D(2x2), Flatten(), Dropout(0.5), Dense(10, softmax)])`, `compile(loss=\"categorical_crossentropy\", optimizer=\"adam\", metrics=[\"accuracy\"])`, `fit(x_train, y_train, batch_size=128, epochs=15, validation_split=0.1)`, then `ml_models.append(model)` and `num_train -= 1`.",
    "Going further: put the training in `try:` and `num_train -= 1` in `finally:`, so a training that fails stops being counted; shuffle before `validation_split` (it takes the last 10 %).",
]

pytestmark = pytest.mark.slow  # imports Keras and trains
IN_TRAINING, TRAINED = "Num of model in training", "Num of trained models"


def info(client) -> dict[str, int]:
    response = client.get("/info/")
    expect_status(response, 200, "GET /info/")
    counts = response.json()
    expect(set(counts) >= {IN_TRAINING, TRAINED}, f"GET /info/ should answer the workshop's two counts; it answered {shown(counts)}")
    return counts


def test_root_answers(client):
    expect_json(client.get("/"), {"Hello": "World"}, "GET /")


def test_info_counts_nothing_before_any_training(client):
    counts = info(client)
    expect(counts[IN_TRAINING] == 0 and counts[TRAINED] == 0,
           f"before any GET /train/, /info/ should count 0 in training and 0 trained; it answered {shown(counts)}")


def test_train_answers_at_once_and_the_server_answers_while_it_trains(client, exercise, trainings):
    before = info(client)
    trainings.hold()
    request = PendingRequest(client, exercise.app, "GET", "/train/")
    try:
        # A background task starts after the answer is sent; a training run inside the route would
        # start first and hold the answer back until the check lets the training go on.
        wait_until(lambda: request.answered.is_set() or trainings.new_models, "GET /train/ answers or trains")
        expect(request.answered.is_set(), "GET /train/ should answer before the training ends: add the training to background_tasks")
        expect(request.status == 200,
               f"GET /train/ should answer 200; it answered {request.status}: {request.body[:300].decode(errors='replace')}")
        body = request.json()
        expect(body == {"message": "Training model in the background"},
               f'GET /train/ should answer {{"message": "Training model in the background"}}; it answered {shown(body)}')
        trainings.wait_for(1)
        expect_json(client.get("/"), {"Hello": "World"}, "GET / during a training")
        during = info(client)
        expect(during[IN_TRAINING] == before[IN_TRAINING] + 1,
               f"during a training, /info/ should count {before[IN_TRAINING] + 1} in training; it counted {during[IN_TRAINING]}")
    finally:
        trainings.open()
        request.finish()
    after = info(client)
    expect(after == {**before, IN_TRAINING: before[IN_TRAINING], TRAINED: before[TRAINED] + 1},
           f"after the training, /info/ should count {before[IN_TRAINING]} in training and {before[TRAINED] + 1} trained; it answered {shown(after)}")


def test_each_train_request_adds_a_trained_model(client, exercise, trainings):
    before = info(client)[TRAINED]
    for _ in range(2):  # the TestClient returns once the app, background task included, is done
        expect_status(client.get("/train/"), 200, "GET /train/")
    counts = info(client)
    expect(counts[TRAINED] == before + 2, f"after two more GET /train/, /info/ should count {before + 2} trained models; it counted {counts[TRAINED]}")
    expect(counts[IN_TRAINING] == 0, f"with no training running, /info/ should count 0 in training; it counted {counts[IN_TRAINING]}")
    expect(len(exercise.ml_models) == before + 2, f"ml_models should hold {before + 2} models; it holds {len(exercise.ml_models)}")


@pytest.mark.going_further(
    "a training can fail (no data, no memory); the workshop's `num_train` then counts it as running for ever",
    hint="decrement `num_train` in a `finally:` around the training: it runs however the training ends",
)
def test_a_failed_training_is_no_longer_counted(client, trainings, monkeypatch):
    import keras

    def broken_fit(*args, **kwargs):
        raise RuntimeError("a training that fails, from the check")

    before = info(client)[IN_TRAINING]
    monkeypatch.setattr(keras.Model, "fit", broken_fit)
    try:
        client.get("/train/")  # the training fails in its background task (here, or earlier in the learner's code)
    except AssertionError:
        pass  # the test client reports the background task's error: expected, the check made it fail
    monkeypatch.undo()
    now = info(client)[IN_TRAINING]
    expect(now == before, f"after a training failed, /info/ should count {before} in training; it counted {now}")
