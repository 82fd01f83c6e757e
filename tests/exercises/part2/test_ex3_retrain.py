"""Checks for part2/ex3_retrain: POST /train/ fine-tunes on uploaded images; GET /upload/."""

import io
import zipfile
from html.parser import HTMLParser

import numpy as np
import pytest

from tests.part2_support import TrainingGate, as_upload, label_of, png, training_files

HINTS = [
    'Fine-tune: start from `ml_models[-1]` when there is one instead of a new model.',
    'POST /train/ takes `files: list[UploadFile]`; the label is the digit after the last `_` of each file name (img123_7.png is a 7). Hand the images and labels to `background_tasks.add_task(training, images, labels)`.',
    'GET /upload/ answers an HTML form: action="/train/", method="post", enctype="multipart/form-data", and <input name="files" type="file" multiple>.',
]

pytestmark = pytest.mark.slow  # the app trains a model at start-up


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "form":
            self.forms.append({**dict(attrs), "inputs": []})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(dict(attrs))


def test_upload_page_posts_many_files_to_train(client):
    response = client.get("/upload/")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    parser = FormParser()
    parser.feed(response.text)
    [form] = parser.forms
    assert form["action"] == "/train/"
    assert form["method"].lower() == "post"
    assert form["enctype"] == "multipart/form-data"
    [files] = [field for field in form["inputs"] if field.get("type") == "file"]
    assert files["name"] == "files"
    assert "multiple" in files


def test_train_fine_tunes_the_newest_model_on_the_uploaded_images(client, exercise, monkeypatch):
    gate = TrainingGate(monkeypatch)
    newest = exercise.ml_models[-1]
    count = len(exercise.ml_models)
    files = training_files(40)
    response = client.post("/train/", files=as_upload(files))
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Training model in the background"
    assert gate.bases == [newest], "the training did not start from the newest model"
    np.testing.assert_array_equal(gate.labels[0], [label_of(name) for name, _ in files])
    assert len(exercise.ml_models) == count + 1
    assert client.get("/info/").json() == {"Num of model in training": 0, "Num of trained models": count + 1}


def test_train_takes_a_zip_of_images(client, exercise, monkeypatch):
    gate = TrainingGate(monkeypatch)
    files = training_files(30)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, data in files:
            zipped.writestr(f"train_img/{name}", data)
    response = client.post("/train/", files={"files": ("train_img.zip", archive.getvalue(), "application/zip")})
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(gate.labels[0], [label_of(name) for name, _ in files])


BAD_UPLOADS = {
    "no-label": ([("img123.png", png())], 422, "has no label"),
    "label-12": ([("img123_12.png", png())], 422, "label 12"),
    "not-an-image": ([("img1_3.png", b"hello")], 422, "not a readable image"),
    "empty": ([("img1_3.png", b"")], 422, "empty"),
    "not-28x28": ([("img1_3.png", png(32, 32))], 422, "32x32"),
    "too-large": ([("img1_3.png", b"\x89PNG" + bytes(2 << 20))], 413, "at most"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_get_a_4xx_naming_the_problem_and_train_nothing(client, exercise, monkeypatch, case):
    gate = TrainingGate(monkeypatch)
    count = len(exercise.ml_models)
    bad, status, says = BAD_UPLOADS[case]
    files = training_files(3) + bad  # one bad file refuses the whole request
    response = client.post("/train/", files=as_upload(files))
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    assert gate.calls == 0 and len(exercise.ml_models) == count


def test_the_upload_form_sent_with_no_file_chosen_says_so(client):
    # What a browser sends: one part with an empty file name and no bytes.
    body = (
        b"--boundary\r\n"
        b'Content-Disposition: form-data; name="files"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        b"\r\n--boundary--\r\n"
    )
    response = client.post("/train/", content=body, headers={"Content-Type": "multipart/form-data; boundary=boundary"})
    assert response.status_code == 422, response.text
    assert "files" in response.text


def test_train_without_files_is_a_422(client):
    response = client.post("/train/")
    assert response.status_code == 422, response.text
    assert "files" in response.text


def test_predict_still_answers(client):
    from tests.part2_support import digit_image

    response = client.post("/predict/", files={"file": digit_image(3)})
    assert response.status_code == 200, response.text
    assert response.json()["result"] in [str(digit) for digit in range(10)]
