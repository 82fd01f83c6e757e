"""Checks for part2/ex3_retrain: POST /train/ fine-tunes on uploaded images; GET /upload/.

The workshop's step: GET /upload/ serves a form that posts many files to /train/, which reads each
image with Pillow, labels it by its name (img123_7.png is a 7) and fine-tunes the newest model in the
background. Going further: a zip of the images works too, and one bad file (no label, not an image,
not 28x28) refuses the whole request with a 4xx naming it before anything trains (the workshop's
code answers a 500, or reads img_12.png as a 1)."""

import io
import zipfile
from html.parser import HTMLParser

import pytest

from tests.exercises.expect import expect, expect_status, shown
from tests.part2_support import as_upload, digit_image, label_of, png, training_files

HINTS = [
    '`training(x_train=None, y_train=None)`: load MNIST only `if (x_train is None) or (y_train is None)`; fine-tune: `model = ml_models[-1]` when `len(ml_models) > 0`, else `new_model()`.',
    'POST /train/ takes `files: list[UploadFile]`; for each file, `Image.open(BytesIO(data)).convert("L")` as `np.array(...)`, and its label is the digit after the last `_` of its name: `int(file.filename.split("_")[-1][0])` (img123_7.png is a 7).',
    'Hand them over as arrays: `background_tasks.add_task(training, np.array(train_img), np.array(labels))`.',
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
    expect_status(response, 200, "GET /upload/")
    expect(response.headers["content-type"].startswith("text/html"), "GET /upload/ should answer an HTML page (HTMLResponse)")
    parser = FormParser()
    parser.feed(response.text)
    expect(len(parser.forms) == 1, f"GET /upload/ should hold one <form>; it holds {len(parser.forms)}")
    [form] = parser.forms
    expect(form.get("action") == "/train/", f"the form should post to /train/ (action=\"/train/\"); its action is {shown(form.get('action'))}")
    expect(form.get("method", "").lower() == "post", "the form should use method=\"post\"")
    expect(form.get("enctype") == "multipart/form-data", "the form should send files: enctype=\"multipart/form-data\"")
    files = [field for field in form["inputs"] if field.get("type") == "file"]
    expect(len(files) == 1 and files[0].get("name") == "files" and "multiple" in files[0],
           f"the form should have one <input name=\"files\" type=\"file\" multiple>; it has {len(files)} file input(s)"
           + "".join(f", {shown(field)}" for field in files))


def test_train_fine_tunes_the_newest_model_on_the_uploaded_images(client, exercise, trainings):
    newest = exercise.ml_models[-1]
    trained = client.get("/info/").json()["Num of trained models"]
    files = training_files(40)
    response = client.post("/train/", files=as_upload(files))
    expect_status(response, 200, "POST /train/ with 40 images")
    expect(response.json().get("message") == "Training model in the background",
           f'POST /train/ should answer {{"message": "Training model in the background"}}; it answered {shown(response.json())}')
    expect(len(trainings.new_models) == 1, f"POST /train/ should start 1 training; it started {len(trainings.new_models)}")
    expect(trainings.new_models[0] is newest, "the training should fine-tune the newest model (ml_models[-1]), not a new one")
    labels = sorted(trainings.new_labels[0].tolist())
    expect(labels == sorted(label_of(name) for name, _ in files),
           "the training should use the uploaded images' labels: the digit after the last `_` of each name")
    now = client.get("/info/").json()
    expect(now == {"Num of model in training": 0, "Num of trained models": trained + 1},
           f"after the training, /info/ should count 0 in training and {trained + 1} trained; it answered {shown(now)}")


def test_train_without_files_is_a_422(client):
    response = client.post("/train/")
    expect_status(response, 422, "POST /train/ without files")
    expect("files" in response.text, f"the 422 should name the missing `files`; it said {response.text}")


def test_predict_still_answers(client):
    response = client.post("/predict/", files={"file": digit_image(3)})
    expect_status(response, 200, "POST /predict/ with test_img3.png")
    expect(response.json().get("result") in [str(digit) for digit in range(10)], f"POST /predict/ should answer a digit; it answered {shown(response.json())}")


@pytest.mark.going_further(
    "data/train_img.zip has 1,000 images: one zip is easier to send than 1,000 files",
    hint="`checked_training_files(files)` (app/part2/uploads.py) gives (name, bytes) of every image, zips opened",
)
def test_train_takes_a_zip_of_images(client, exercise, trainings):
    files = training_files(30)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, data in files:
            zipped.writestr(f"train_img/{name}", data)
    response = client.post("/train/", files={"files": ("train_img.zip", archive.getvalue(), "application/zip")})
    expect_status(response, 200, "POST /train/ with train_img.zip")
    expect(sorted(trainings.new_labels[0].tolist()) == sorted(label_of(name) for name, _ in files),
           "the training should use the zipped images, labelled by their names")


BAD_UPLOADS = {
    "no-label": ([("img123.png", png())], 422, "has no label"),
    "label-12": ([("img123_12.png", png())], 422, "label 12"),
    "not-an-image": ([("img1_3.png", b"hello")], 422, "not a readable image"),
    "empty": ([("img1_3.png", b"")], 422, "empty"),
    "not-28x28": ([("img1_3.png", png(32, 32))], 422, "32x32"),
    "too-large": ([("img1_3.png", b"\x89PNG" + bytes(2 << 20))], 413, "at most"),
}


@pytest.mark.going_further(
    "one bad file must not crash the request (a 500) nor teach the model a wrong label (img_12.png read as a 1)",
    hint="`for name, data in checked_training_files(files):` checks every file before any training starts",
)
@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_get_a_4xx_naming_the_problem_and_train_nothing(client, exercise, trainings, case):
    count = len(exercise.ml_models)
    bad, status, says = BAD_UPLOADS[case]
    files = training_files(3) + bad  # one bad file refuses the whole request
    response = client.post("/train/", files=as_upload(files))
    expect_status(response, status, f"POST /train/ with {bad[0][0]} ({case})")
    expect(says in response.json()["detail"], f"the {status} should say {shown(says)}; it said {shown(response.json()['detail'])}")
    expect(not trainings.new_models and len(exercise.ml_models) == count, "a refused upload should train nothing")


@pytest.mark.going_further(
    "a browser sends the form with no file chosen as one nameless, empty part: that is a 422, not a 500",
    hint="checked_training_files refuses it with a 422 naming `files`",
)
def test_the_upload_form_sent_with_no_file_chosen_says_so(client):
    body = (
        b"--boundary\r\n"
        b'Content-Disposition: form-data; name="files"; filename=""\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        b"\r\n--boundary--\r\n"
    )
    response = client.post("/train/", content=body, headers={"Content-Type": "multipart/form-data; boundary=boundary"})
    expect_status(response, 422, "POST /train/ from the form with no file chosen")
    expect("files" in response.text, f"the 422 should name `files`; it said {response.text}")
