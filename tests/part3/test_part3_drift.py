"""Drift signals in the running service: what the model was made for raises none, digits drawn
differently (and penguins measured differently) do. The p-values are printed (pytest -s)."""

import json

import numpy as np
import pytest
from part3_support import copy_store, running_service

from app import images
from app.datasets import bundled_images, load_penguins
from app.models.mnist import styles as digit_styles
from app.paths import DATA_DIR

WINDOW = 500


@pytest.fixture(scope="module")
def client(models_dir):
    with running_service(models_dir, trainer=False, drift_window=WINDOW, drift_min_window=100) as client:
        yield client


@pytest.fixture(scope="module")
def unseen():
    """The 1,000 images of the workshop's upload set: MNIST digits the model never saw."""
    return bundled_images("upload")[0]


def send_digits(client, pixels: np.ndarray, chunk: int = 100) -> None:
    service = client.app.state.service
    service.monitoring.reset("mnist")
    for start in range(0, len(pixels), chunk):
        files = [
            ("files", (f"img{start + i}.png", images.encode_png(image), "image/png"))
            for i, image in enumerate(pixels[start : start + chunk])
        ]
        response = client.post("/predict/batch/", files=files)
        assert response.status_code == 200, response.text


def drift_of(client, model: str) -> dict:
    report = client.get("/models/").json()[model]["drift"]
    print(
        f"\n{model}: {report['status']} on {report['window']} requests, threshold {report.get('threshold')}:",
        json.dumps({name: float(f"{values['p_value']:.3g}") for name, values in report["signals"].items()}),
    )
    return report


def shuffled(pixels: np.ndarray, seed: int = 0) -> np.ndarray:
    return pixels[np.random.default_rng(seed).permutation(len(pixels))]


def test_unseen_mnist_digits_and_the_workshop_test_images_raise_no_drift(client, unseen):
    workshop = np.stack(
        [images.decode_digit((DATA_DIR / "test_image" / f"test_img{d}.png").read_bytes()) for d in range(10)]
    )
    send_digits(client, shuffled(np.concatenate([unseen[: WINDOW - 10], workshop])))
    report = drift_of(client, "mnist")
    assert report["status"] == "no drift" and report["window"] == WINDOW
    assert set(report["signals"]) == {"confidence", "ink", "offset", "predicted_class"}
    assert all(values["p_value"] > report["threshold"] for values in report["signals"].values())
    models = client.get("/models/").json()
    assert models["mnist"]["retrain_recommended"] is False and models["mnist"]["retrain_reasons"] == []


@pytest.mark.parametrize("seed", [1, 2])
def test_the_holdout_in_any_order_raises_no_drift(client, seed):
    holdout = bundled_images("test")[0]
    send_digits(client, shuffled(holdout, seed))
    assert drift_of(client, "mnist")["status"] == "no drift"


@pytest.mark.parametrize(
    ("style", "signal"),
    [("inverted", "ink"), ("shifted", "offset"), ("thickened", "ink"), ("other_style", "ink")],
)
def test_digits_drawn_differently_raise_drift(client, unseen, style, signal):
    if style == "other_style":
        pixels = digit_styles.other_style(300)[0]
    else:
        pixels = getattr(digit_styles, style)(shuffled(unseen)[:300])
    send_digits(client, pixels)
    report = drift_of(client, "mnist")
    assert report["status"] == "drift", style
    assert report["signals"][signal]["significant"], (style, report["signals"])
    models = client.get("/models/").json()["mnist"]
    assert models["retrain_recommended"] is True
    assert any(signal in reason for reason in models["retrain_reasons"])
    metrics = client.get("/metrics").text
    assert f'workshop_drift_p_value{{model="mnist",signal="{signal}"}}' in metrics
    assert 'workshop_retrain_recommended{model="mnist"} 1.0' in metrics


def send_penguins(client, lengths) -> None:
    client.app.state.service.monitoring.reset("penguins")
    for bill, flipper in lengths:
        assert client.get("/predict/", params={"bill": bill, "flipper": flipper}).status_code == 200


def test_the_bundled_penguins_raise_no_drift_and_longer_ones_do(client):
    frame = load_penguins().sample(frac=1.0, random_state=0)
    lengths = frame[["bill_length_mm", "flipper_length_mm"]].to_numpy()[:200]
    send_penguins(client, lengths)
    assert drift_of(client, "penguins")["status"] == "no drift"
    send_penguins(client, lengths * [1.15, 1.0])  # bills measured another way
    report = drift_of(client, "penguins")
    assert report["status"] == "drift" and report["signals"]["bill_length_mm"]["significant"]
    assert not report["signals"]["flipper_length_mm"]["significant"]


def test_too_few_requests_give_no_signal_yet(client, unseen):
    send_digits(client, digit_styles.inverted(unseen[:50]))
    report = drift_of(client, "mnist")
    assert report["status"] == "collecting" and report["signals"] == {}


def test_a_version_without_a_reference_has_no_drift_signal(models_dir, tmp_path, unseen):
    store = copy_store(models_dir, tmp_path / "models")
    metadata_file = store / "mnist" / "1" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    del metadata["drift_reference"]
    metadata_file.write_text(json.dumps(metadata))
    with running_service(store, trainer=False, drift_min_window=10) as client:
        send_digits(client, digit_styles.inverted(unseen[:20]))
        report = client.get("/models/").json()["mnist"]
    assert report["drift"]["status"] == "no reference" and report["drift"]["signals"] == {}
    assert "without a drift reference" in report["drift"]["detail"]
    assert report["retrain_recommended"] is False
