"""The promotion gate in the running service (slow: real trainer processes, realistic thresholds).

The store starts with a digit model good enough to serve (three epochs on the bundled training
split, about 0.9 on the bundled test split). A fine-tune on wrongly labelled uploads must be stored
but not served, a good fine-tune must be promoted, and a rejected version serves only when
activated with force. The rest of the suite runs the gate with thresholds that accept anything
(tests/conftest.py); this module sets the service's defaults explicitly.
"""

import io
import zipfile

import numpy as np
import pytest
from part3_support import API_KEY, copy_store, digit_file, metric, running_service, wait_for_job, wait_until

from app import promotion
from app.datasets import bundled_images
from app.images import encode_png
from app.models import mnist
from app.part3.kept_models import KeptModels
from app.store import ModelStore

pytestmark = pytest.mark.slow
KEY = {"X-API-Key": API_KEY}
FLOOR, MARGIN = 0.8, 0.02  # the settings' defaults, spelled out: the suite's environment lowers them


@pytest.fixture(scope="module")
def gate_store(seeded_store, tmp_path_factory):
    """The seeded penguins, and an empty digit store whose first version is a decent model."""
    folder = copy_store(seeded_store, tmp_path_factory.mktemp("gate") / "models")
    store = ModelStore(mnist.MODEL_NAME, folder)
    for number in store.versions():  # the seeded digit model is too weak for a realistic floor
        (store.path / str(number) / "metadata.json").unlink()
    images, labels = bundled_images("train")
    result = mnist.train(images, labels, epochs=3, seed=0)
    with store.training_lock():
        first = promotion.publish(mnist.MODEL, result, {"parameters": {"epochs": 3}}, store, floor=FLOOR, margin=MARGIN)
    return folder, first


@pytest.fixture(scope="module")
def client(gate_store):
    folder, _ = gate_store
    gate = {"gate_floor": {"mnist": FLOOR}, "gate_margin": {"mnist": MARGIN}}
    with running_service(folder, api_key=API_KEY, **gate) as client:
        yield client


def served_version(client) -> int:
    return client.post("/predict/", files={"file": digit_file(4)}).json()["version"]


def uploads_zip(shift: int) -> tuple[str, bytes, str]:
    """The bundled upload images (data/train_img.zip's), each named with its digit plus `shift` mod 10."""
    images, labels = bundled_images("upload")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, (pixels, label) in enumerate(zip(images, (labels + shift) % 10, strict=True)):
            archive.writestr(f"img{i:04d}_{label}.png", encode_png(pixels))
    return "uploads.zip", buffer.getvalue(), "application/zip"


def fine_tune(client, shift: int, epochs: int) -> dict:
    response = client.post("/train/", files={"files": uploads_zip(shift)}, data={"epochs": str(epochs)}, headers=KEY)
    assert response.status_code == 202, response.text
    return wait_for_job(client.get, response.json()["id"])


def listed(client, number: int) -> dict:
    return next(entry for entry in client.get("/models/").json()["mnist"]["versions"] if entry["version"] == number)


def test_the_first_version_needs_only_the_floor(gate_store):
    _, first = gate_store
    gate = first.metadata["gate"]
    assert (gate["decision"], gate["active_version"], gate["active_accuracy"]) == ("promoted", None, None), gate
    assert gate["accuracy"] >= FLOOR and gate["n_holdout"] == len(bundled_images("test")[1])
    print(f"first version: {gate['decision']}, holdout accuracy {gate['accuracy']:.4f}")


def test_a_fine_tune_on_wrong_labels_is_stored_but_not_served(client, gate_store):
    folder, first = gate_store
    assert served_version(client) == first.number
    job = fine_tune(client, shift=1, epochs=3)
    assert job["status"] == "succeeded" and job["promoted"] is False, job
    assert "below the floor" in job["gate_reason"] and "not promoted" in job["progress"]
    rejected = listed(client, job["version"])
    assert rejected["status"] == "rejected" and rejected["gate"]["rule"] == "floor"
    assert rejected["gate"]["accuracy"] < FLOOR and rejected["gate"]["active_version"] == first.number
    print(f"wrong labels: {rejected['gate']['decision']} by {rejected['gate']['rule']}, {rejected['gate']['reason']}")

    # This worker, after several polls, and any other worker (a fresh one loads what the store serves).
    for _ in range(3):
        client.get("/health/ready")
        assert served_version(client) == first.number
    other_worker = KeptModels(folder)
    assert other_worker.refresh() == {"penguins": 1, "mnist": first.number}
    assert client.get("/models/").json()["mnist"]["active"] == first.number
    text = client.get("/metrics").text
    assert metric(text, "workshop_gate_decisions_total", model="mnist", decision="rejected") >= 1


def test_a_good_fine_tune_is_promoted_and_served(client, gate_store):
    _, first = gate_store
    job = fine_tune(client, shift=0, epochs=5)
    assert job["status"] == "succeeded" and job["promoted"] is True, job
    gate = listed(client, job["version"])["gate"]
    assert gate["decision"] == "promoted" and gate["accuracy"] >= gate["active_accuracy"] - MARGIN
    print(f"good fine-tune: promoted, holdout accuracy {gate['accuracy']:.4f} against {gate['active_accuracy']:.4f}")
    wait_until(lambda: served_version(client) == job["version"], "the promoted version serves")
    assert listed(client, job["version"])["status"] == "active" and listed(client, first.number)["status"] == "promoted"


def test_a_rejected_version_serves_only_when_forced(client, gate_store):
    folder, _ = gate_store
    store = ModelStore(mnist.MODEL_NAME, folder)
    rejected = next(number for number in store.versions() if not store.promoted(number))
    serving = served_version(client)
    refused = client.post(f"/models/mnist/{rejected}/activate", headers=KEY)
    assert refused.status_code == 409, refused.text
    assert "floor rule" in refused.json()["detail"] and "force=true" in refused.json()["detail"]
    assert served_version(client) == serving
    forced = client.post(f"/models/mnist/{rejected}/activate", params={"force": "true"}, headers=KEY)
    assert forced.status_code == 200, forced.text
    assert (forced.json()["active"], forced.json()["forced"]) == (rejected, True)
    assert served_version(client) == rejected and listed(client, rejected)["status"] == "active"
    back = client.post(f"/models/mnist/{serving}/activate", headers=KEY)
    assert back.json()["forced"] is False and served_version(client) == serving


def test_the_rejected_model_is_really_worse_and_the_margin_refuses_it_under_a_low_floor(gate_store):
    """The gate's figures are the models' own (measured again here), and with a floor the wrong-label
    model passes, the margin over the serving version still refuses it."""
    folder, _ = gate_store
    store = ModelStore(mnist.MODEL_NAME, folder)
    serving, rejected = store.active(), next(n for n in store.versions() if not store.promoted(n))
    images, labels = bundled_images("test")
    models = {n: store.load(n, mnist.load) for n in (serving, rejected)}
    accuracy = {n: float(np.mean(mnist.predict_classes(model, images) == labels)) for n, model in models.items()}
    assert accuracy[rejected] == store.get(rejected).metadata["gate"]["accuracy"] < accuracy[serving] - MARGIN
    with store.training_lock():
        again = promotion.publish(
            mnist.MODEL,
            mnist.TrainingResult(models[rejected]),
            {"parent": serving},
            store,
            floor=accuracy[rejected] / 2,
            margin=MARGIN,
        )
    gate = again.metadata["gate"]
    assert (gate["decision"], gate["rule"], gate["active_version"]) == ("rejected", "margin", serving), gate
    assert store.active() == serving
    print(f"wrong labels under floor {gate['floor']:.3f}: rejected by margin, {gate['reason']}")


def test_a_service_whose_only_digit_version_was_rejected_says_why_until_one_is_forced(seeded_store, tmp_path):
    folder = copy_store(seeded_store, tmp_path / "models")
    store = ModelStore(mnist.MODEL_NAME, folder)
    weak = store.load(1, mnist.load)  # the seeded model: one epoch on 300 digits
    (store.path / "1" / "metadata.json").unlink()
    with store.training_lock():
        rejected = promotion.publish(mnist.MODEL, mnist.TrainingResult(weak), {}, store, floor=FLOOR)
    assert rejected.metadata["gate"]["rule"] == "floor" and store.active() is None
    with running_service(folder, wait_ready=False, api_key=API_KEY) as client:
        detail = wait_until(
            lambda: "promotion gate" in (text := client.get("/health/ready").json()["detail"] or "") and text,
            "it says why",
        )
        assert "below the floor" in detail and "force=true" in detail
        forced = client.post(f"/models/mnist/{rejected.number}/activate?force=true", headers=KEY)
        assert forced.status_code == 200 and forced.json()["forced"] is True
        wait_until(lambda: client.get("/health/ready").status_code == 200, "the forced version serves")
