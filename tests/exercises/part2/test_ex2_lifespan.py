"""Checks for part2/ex2_lifespan: a model is ready before the first request; POST /predict/."""

import pytest

from tests.part2_support import digit_image, good_model, png

HINTS = [
    'Code before `yield` in the lifespan runs before the app takes its first request: call `training()` there.',
    "POST /predict/ takes `file: UploadFile`: read its bytes, open them with Pillow (`Image.open(BytesIO(data)).convert('L')`), scale to [0, 1] with shape (1, 28, 28, 1) and take the argmax of the newest model's prediction.",
    'Going further: `read_digit(file)` (app/part2/uploads.py) refuses what is not a 28x28 image with a 4xx, and `no_model_yet()` is a 503 with Retry-After while no model exists.',
]

pytestmark = pytest.mark.slow  # the app trains a model at start-up


def predict(client, name: str, data: bytes):
    return client.post("/predict/", files={"file": (name, data, "image/png")})


def test_a_model_is_trained_before_the_first_request(client):
    assert client.get("/info/").json() == {"Num of model in training": 0, "Num of trained models": 1}
    response = predict(client, *digit_image(7))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filename"] == "test_img7.png"
    assert body["result"] in [str(digit) for digit in range(10)]


def test_predictions_are_right_with_a_well_trained_model(client, exercise, monkeypatch):
    monkeypatch.setattr(exercise, "ml_models", [good_model()])
    results = {digit: predict(client, *digit_image(digit)).json()["result"] for digit in range(10)}
    right = [digit for digit, result in results.items() if result == str(digit)]
    assert len(right) >= 9, f"predicted {results} for the test images 0-9"


@pytest.mark.parametrize(
    ("name", "data", "status", "says"),
    [
        ("notes.png", b"this is not an image", 422, "not a readable image"),
        ("empty.png", b"", 422, "empty"),
        ("big.png", png(56, 56), 422, "56x56"),
        ("wide.png", png(28, 27), 422, "28x27"),
        ("huge.png", b"\x89PNG" + bytes(2 << 20), 413, "at most"),
    ],
    ids=["not-an-image", "empty", "56x56", "28x27", "2-MiB"],
)
def test_bad_images_get_a_4xx_that_names_the_problem(client, name, data, status, says):
    response = predict(client, name, data)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    assert name in response.json()["detail"]


def test_a_request_without_a_file_is_a_422(client):
    response = client.post("/predict/")
    assert response.status_code == 422, response.text
    assert "file" in response.text


def test_predict_before_any_model_is_a_503_with_retry_after(client, exercise, monkeypatch):
    monkeypatch.setattr(exercise, "ml_models", [])
    response = predict(client, *digit_image(7))
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
