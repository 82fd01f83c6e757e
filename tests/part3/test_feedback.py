"""Label feedback: prediction ids, POST /feedback/ and its refusals, live accuracy, training on
feedback and the retrain policy."""

import io
import time

import numpy as np
import pytest
from part3_support import digit_file, metric, running_service, wait_until
from PIL import Image

from app import images
from app.models import mnist
from app.part3.feedback_backends import open_feedback
from app.part3.job_records import SqliteJobRecords
from app.part3.kept_models import KeptModels
from app.part3.monitoring import Monitoring
from app.part3.prediction_ids import PredictionIds, shared_secret
from app.part3.settings import Settings

MAX_UPLOAD = 1 << 20


@pytest.fixture(scope="module")
def client(models_dir):
    with running_service(models_dir, trainer=False, max_upload_bytes=MAX_UPLOAD) as client:
        yield client


def service_of(client):
    return client.app.state.service


def stored(client) -> int:
    return service_of(client).monitoring.feedback.count()


def predict_digit(client, digit: int = 7) -> dict:
    response = client.post("/predict/", files={"file": digit_file(digit)})
    assert response.status_code == 200, response.text
    return response.json()


def predict_penguin(client) -> dict:
    response = client.get("/predict/", params={"bill": "40.3", "flipper": "195"})
    assert response.status_code == 200, response.text
    return response.json()


def live_of(client, model: str, version: int = 1) -> dict:
    versions = client.get("/models/").json()[model]["versions"]
    return next(entry["live"] for entry in versions if entry["version"] == version)


def test_every_prediction_answer_carries_a_distinct_prediction_id(client):
    batch = client.post("/predict/batch/", files=[("files", digit_file(d)) for d in (1, 2, 1)]).json()
    ids = [predict_digit(client)["prediction_id"], predict_penguin(client)["prediction_id"]]
    ids += [item["prediction_id"] for item in batch["results"]]
    assert all(isinstance(value, str) and len(value) < 200 for value in ids)
    assert len(set(ids)) == len(ids)


def test_feedback_changes_live_accuracy_in_models_and_metrics(client):
    before = live_of(client, "mnist")
    right, wrong = predict_digit(client, 7), predict_digit(client, 7)
    answer = client.post("/feedback/", json={"prediction_id": right["prediction_id"], "label": int(right["result"])})
    assert answer.status_code == 200, answer.text
    assert answer.json()["recorded"] is True and answer.json()["correct"] is True
    other = (int(wrong["result"]) + 1) % 10
    assert (
        client.post("/feedback/", json={"prediction_id": wrong["prediction_id"], "label": other}).json()["correct"]
        is False
    )
    after = live_of(client, "mnist")
    assert after["n_labels"] == before["n_labels"] + 2
    correct_before = (before["accuracy"] or 0) * before["n_labels"]
    assert after["accuracy"] == pytest.approx((correct_before + 1) / after["n_labels"])
    text = client.get("/metrics").text
    assert metric(text, "workshop_live_accuracy", model="mnist", version="1") == pytest.approx(after["accuracy"])
    assert metric(text, "workshop_live_labels", model="mnist", version="1") == after["n_labels"]


def test_penguin_feedback_takes_species_names(client):
    prediction = predict_penguin(client)
    answer = client.post("/feedback/", json={"prediction_id": prediction["prediction_id"], "label": "Gentoo"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "recorded": True,
        "model": "penguins",
        "version": 1,
        "predicted": prediction["result"],
        "label": "Gentoo",
        "correct": prediction["result"] == "Gentoo",
        "input_kept": False,
    }
    assert live_of(client, "penguins")["n_labels"] >= 1


def test_the_same_feedback_twice_changes_nothing_and_another_label_is_409(client):
    prediction = predict_digit(client)
    body = {"prediction_id": prediction["prediction_id"], "label": 4}
    assert client.post("/feedback/", json=body).json()["recorded"] is True
    count = stored(client)
    again = client.post("/feedback/", json=body)
    assert again.status_code == 200 and again.json()["recorded"] is False
    conflict = client.post("/feedback/", json={**body, "label": 5})
    assert conflict.status_code == 409 and "already has feedback with label '4'" in conflict.json()["detail"]
    assert stored(client) == count


def forged(prediction_id: str) -> str:
    body, signature = prediction_id.split(".")
    return f"{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


def edited(prediction_id: str) -> str:
    """The same id claiming another answer, signature kept."""
    import base64

    body, signature = prediction_id.split(".")
    fields = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().split("|")
    fields[2] = "0" if fields[2] != "0" else "1"
    return base64.urlsafe_b64encode("|".join(fields).encode()).rstrip(b"=").decode() + "." + signature


def expired(client, prediction_id: str) -> str:
    service = service_of(client)
    old = PredictionIds(service.monitoring.ids.secret, service.settings.feedback_max_age)
    real_time = time.time
    try:
        time.time = lambda: real_time() - service.settings.feedback_max_age - 60
        return old.issue("mnist", 1, "7")
    finally:
        time.time = real_time


@pytest.mark.parametrize(
    ("make_body", "status", "named"),
    [
        (lambda c, p: {"prediction_id": forged(p), "label": 7}, 422, "signature does not match"),
        (lambda c, p: {"prediction_id": edited(p), "label": 7}, 422, "signature does not match"),
        (lambda c, p: {"prediction_id": "not-an-id", "label": 7}, 422, "malformed"),
        (lambda c, p: {"prediction_id": expired(c, p), "label": 7}, 422, "expired"),
        (lambda c, p: {"prediction_id": p, "label": 11}, 422, "label 11 is not a class of mnist"),
        (lambda c, p: {"prediction_id": p, "label": "seven"}, 422, "label 'seven' is not a class"),
        (lambda c, p: {"prediction_id": p, "label": True}, 422, "label"),
        (lambda c, p: {"prediction_id": p}, 422, "label"),
        (lambda c, p: {"prediction_id": "x" * 5000, "label": 7}, 422, "prediction_id"),
    ],
    ids=[
        "forged",
        "edited",
        "malformed",
        "expired",
        "label-out-of-range",
        "label-not-a-digit",
        "label-bool",
        "no-label",
        "huge-id",
    ],
)
def test_bad_feedback_is_4xx_naming_the_problem_and_stores_nothing(client, make_body, status, named):
    prediction = predict_digit(client)
    count = stored(client)
    response = client.post("/feedback/", json=make_body(client, prediction["prediction_id"]))
    assert response.status_code == status, response.text
    assert named in str(response.json()["detail"])
    assert stored(client) == count


def test_a_species_that_is_not_a_class_is_refused(client):
    count = stored(client)
    response = client.post(
        "/feedback/", json={"prediction_id": predict_penguin(client)["prediction_id"], "label": "Emperor"}
    )
    assert response.status_code == 422 and "one of Adelie, Chinstrap, Gentoo" in response.json()["detail"]
    assert stored(client) == count


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_feedback_keeps_the_image_for_training(client):
    name, content, kind = digit_file(3)
    prediction = predict_digit(client, 3)
    response = client.post(
        "/feedback/image/",
        data={"prediction_id": prediction["prediction_id"]},
        files={"file": ("img_3.png", content, kind)},
    )  # the label from the file name
    assert response.status_code == 200, response.text
    assert response.json()["label"] == "3" and response.json()["input_kept"] is True
    kept, labels = service_of(client).monitoring.feedback.training_examples(mnist.MODEL)
    assert labels[-1] == 3 and np.array_equal(kept[-1], images.decode_digit(content))


@pytest.mark.parametrize(
    ("file", "data", "status", "named"),
    [
        (("img_3.png", png(np.zeros((30, 30))), "image/png"), {}, 422, "is 30x30 pixels"),
        (("img_3.png", b"not an image", "image/png"), {}, 422, "not a readable image"),
        (digit_file(4), {"label": "4"}, 422, "is not the image predicted"),  # another image than the one predicted
        (("img.png", None, "image/png"), {}, 422, "has no label"),
        (("img_3.png", None, "image/png"), {"label": "12"}, 422, "label '12' is not a class"),
        (("img_3.png", b"\x89PNG" + bytes(MAX_UPLOAD), "image/png"), {}, 413, "larger than"),
    ],
    ids=["wrong-size", "not-an-image", "another-image", "no-label", "bad-label", "too-large"],
)
def test_bad_image_feedback_is_4xx_naming_the_problem_and_stores_nothing(client, file, data, status, named):
    _, content, _ = digit_file(3)
    prediction = predict_digit(client, 3)
    name, body, kind = file
    count = stored(client)
    response = client.post(
        "/feedback/image/",
        data={"prediction_id": prediction["prediction_id"], **data},
        files={"file": (name, content if body is None else body, kind)},
    )
    assert response.status_code == status, response.text
    assert named in response.json()["detail"]
    assert stored(client) == count


def test_a_penguin_prediction_takes_no_image(client):
    _, content, kind = digit_file(3)
    count = stored(client)
    response = client.post(
        "/feedback/image/",
        data={"prediction_id": predict_penguin(client)["prediction_id"]},
        files={"file": ("img_3.png", content, kind)},
    )
    assert response.status_code == 422 and "send penguins feedback as JSON" in response.json()["detail"]
    assert stored(client) == count


def test_another_worker_with_the_store_secret_takes_the_feedback(client, models_dir):
    prediction_id = predict_digit(client)["prediction_id"]
    other_worker = PredictionIds(shared_secret(models_dir), 3600.0)
    assert other_worker.read(prediction_id).model == "mnist"


def test_feedback_is_bounded_per_model(tmp_path, feedback_url):
    store = open_feedback(Settings(models_dir=tmp_path, queue_url=feedback_url, feedback_kept=3))
    for number in range(5):
        store.record(f"id{number}", "mnist", 1, "7", str(number), time.time(), np.full((28, 28), number, np.uint8))
    store.record("p", "penguins", 1, "Adelie", "Adelie", time.time())
    assert store.count("mnist") == 3 and store.count("penguins") == 1
    pixels, labels = store.training_examples(mnist.MODEL)
    assert labels.tolist() == [2, 3, 4] and pixels[0, 0, 0] == 2
    assert store.live_accuracy("mnist", window=2)[1].n_labels == 2


def test_training_on_feedback_queues_a_fine_tune_on_the_kept_images(client):
    kept = len(service_of(client).monitoring.feedback.training_examples(mnist.MODEL)[1])
    assert kept >= 1  # sent by test_image_feedback_keeps_the_image_for_training
    response = client.post("/train/feedback/", data={"epochs": "1"})
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "fine-tune" and response.json()["n_images"] == kept


def test_training_on_feedback_without_images_is_422(seeded_store, tmp_path):
    from part3_support import copy_store

    with running_service(copy_store(seeded_store, tmp_path / "models"), trainer=False) as client:
        response = client.post("/train/feedback/")
    assert response.status_code == 422 and "no feedback images yet" in response.json()["detail"]


class Recommending(Monitoring):
    """The policy's decision with retraining always recommended (what recommends it is tested above)."""

    def recommendation(self, name):
        return True, ["live accuracy below the floor"]


def test_the_policy_queues_at_most_one_fine_tune_and_waits_its_interval(tmp_path):
    settings = Settings(
        models_dir=tmp_path, retrain_policy="fine-tune-on-feedback", retrain_min_interval=3600, epochs=1
    )
    jobs = SqliteJobRecords(tmp_path / "queue.sqlite3", tmp_path)
    monitoring = Recommending(settings, kept=KeptModels(tmp_path), jobs=jobs.all, submit=jobs.submit)
    assert monitoring.apply_policy() == []  # no feedback with inputs yet: nothing to fine-tune on
    for number in range(4):
        monitoring.feedback.record(f"id{number}", "mnist", 1, "1", "7", time.time(), np.full((28, 28), 9, np.uint8))
    (first,) = monitoring.apply_policy()
    # Three of the four: the newest (30 % of 4, rounded down) is the live holdout, never trained on.
    assert (first.kind, first.model, first.n_images, first.feedback_boundary) == ("fine-tune", "mnist", 3, 3)
    assert first.retrain_reasons == ["live accuracy below the floor"]
    assert monitoring.apply_policy() == []  # one is queued
    jobs.update(first.id, status="succeeded")
    assert monitoring.apply_policy() == []  # finished, but the interval has not passed
    assert [job.kind for job in jobs.all()] == ["fine-tune"]
    soon = Settings(
        models_dir=tmp_path,
        retrain_policy="fine-tune-on-feedback",
        retrain_min_interval=0.01,
        retrain_min_new_labels=2,  # the live holdout's row came after the boundary: one more
        epochs=1,
    )
    time.sleep(0.05)
    # After a fine-tune, the next one waits for new labels too (tests/part3/test_retrain_loop.py).
    assert Recommending(soon, kept=KeptModels(tmp_path), jobs=jobs.all, submit=jobs.submit).apply_policy() == []
    monitoring.feedback.record("id4", "mnist", 1, "1", "7", time.time(), np.full((28, 28), 8, np.uint8))
    assert Recommending(soon, kept=KeptModels(tmp_path), jobs=jobs.all, submit=jobs.submit).apply_policy() != []
    off = Settings(models_dir=tmp_path, retrain_policy="off")
    time.sleep(0.05)
    assert Recommending(off, kept=KeptModels(tmp_path), jobs=jobs.all, submit=jobs.submit).apply_policy() == []


def test_low_live_accuracy_recommends_retraining(seeded_store, tmp_path):
    from part3_support import copy_store

    store = copy_store(seeded_store, tmp_path / "models")
    with running_service(store, trainer=False, retrain_min_labels=5, retrain_accuracy_floor=0.9) as client:
        for _ in range(5):
            prediction = predict_digit(client, 7)
            wrong = (int(prediction["result"]) + 1) % 10
            assert (
                client.post(
                    "/feedback/", json={"prediction_id": prediction["prediction_id"], "label": wrong}
                ).status_code
                == 200
            )
        mnist = wait_until(
            lambda: (m := client.get("/models/").json()["mnist"])["retrain_recommended"] and m, "recommended"
        )
    assert any("live accuracy of version 1 is 0.0% on 5 labels" in reason for reason in mnist["retrain_reasons"]), mnist
