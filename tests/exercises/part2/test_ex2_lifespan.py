"""Checks for part2/ex2_lifespan: a model is ready before the first request; POST /predict/.

The workshop's step: the lifespan trains a first model before the app serves, and POST /predict/
reads the uploaded image with Pillow and answers the newest model's digit. Going further: what is
not a 28x28 image gets a 4xx naming the problem (not a 500, nor a guess on a photo), and a prediction
before any model is a 503 with Retry-After (the workshop's `ml_models[-1]` is an IndexError, a 500)."""

import pytest

from tests.exercises.expect import expect, expect_status, shown
from tests.part2_support import digit_image, good_model, png

HINTS = [
    'Code before `yield` in the lifespan runs before the app takes its first request: call `training()` there; after `yield` (at shutdown) `ml_models.clear()`.',
    "POST /predict/ takes `file: UploadFile`: read its bytes (`file.file.read()` in a plain `def`, `await file.read()` in an `async def`), open them with Pillow: `Image.open(BytesIO(data)).convert('L')`.",
    "Then `image = np.array(image).astype('float32') / 255`, `np.expand_dims(image, (0, -1))` (shape (1, 28, 28, 1)), and `ml_models[-1].predict(image).argmax(axis=-1)[0]` is the digit; answer it with `str(...)`.",
    'Going further: `refuse_unless_digit(data, file.filename)` (app/part2/uploads.py) refuses what is not a 28x28 image with a 4xx, and `no_model_yet()` is a 503 with Retry-After while no model exists.',
]

pytestmark = pytest.mark.slow  # the app trains a model at start-up
DIGITS = [str(digit) for digit in range(10)]


def predict(client, name: str, data: bytes):
    return client.post("/predict/", files={"file": (name, data, "image/png")})


def test_a_model_is_trained_before_the_first_request(client):
    counts = client.get("/info/").json()
    expect(counts.get("Num of trained models") == 1,
           f"after start-up, GET /info/ should count 1 trained model; it answered {shown(counts)}: train in the lifespan, before `yield`")
    response = predict(client, *digit_image(7))
    expect_status(response, 200, "POST /predict/ with test_img7.png")
    body = response.json()
    expect(body.get("filename") == "test_img7.png", f"POST /predict/ should answer the file's name as \"filename\"; it answered {shown(body)}")
    expect(body.get("result") in DIGITS, f"POST /predict/ should answer the digit as text in \"result\" (\"0\" to \"9\"); it answered {shown(body)}")


def test_predictions_are_right_with_a_well_trained_model(client, exercise, monkeypatch):
    monkeypatch.setattr(exercise, "ml_models", [good_model()])
    results = {}
    for digit in range(10):
        response = predict(client, *digit_image(digit))
        expect_status(response, 200, f"POST /predict/ with test_img{digit}.png")
        results[digit] = response.json().get("result")
    right = [digit for digit, result in results.items() if result == str(digit)]
    expect(len(right) >= 9, f"with a well-trained model as ml_models[-1], at least 9 of the 10 test images should be "
           f"read right; {len(right)} were: " + ", ".join(f"test_img{digit}.png as {shown(result)}" for digit, result in results.items())
           + " (scale to [0, 1], shape (1, 28, 28, 1), argmax)")


def test_a_request_without_a_file_is_a_422(client):
    response = client.post("/predict/")
    expect_status(response, 422, "POST /predict/ without a file")
    expect("file" in response.text, f"the 422 should name the missing `file`; it said {response.text}")


@pytest.mark.going_further(
    "Pillow opens any image, so a photo or a 56x56 digit gets a guess, and a file that is no image a 500",
    hint="`refuse_unless_digit(data, file.filename)` (app/part2/uploads.py) refuses them with a 4xx naming the file and the problem",
)
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
    expect_status(response, status, f"POST /predict/ with {name} ({says})")
    detail = response.json()["detail"]
    expect(says in detail and name in detail, f"the {status} should name {name} and say {shown(says)}; it said {shown(detail)}")


@pytest.mark.going_further(
    "before any model exists, `ml_models[-1]` is an IndexError (a 500); a 503 with Retry-After tells the client to come back",
    hint="`if not ml_models: raise no_model_yet()` (app/part2/serving.py)",
)
def test_predict_before_any_model_is_a_503_with_retry_after(client, exercise, monkeypatch):
    monkeypatch.setattr(exercise, "ml_models", [])
    response = predict(client, *digit_image(7))
    expect_status(response, 503, "POST /predict/ before any model is trained")
    expect(int(response.headers.get("Retry-After", 0)) > 0, "the 503 should say when to retry (a Retry-After header)")
