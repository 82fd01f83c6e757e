"""The Part 3 service's routes, in-process, on a copy of a seeded store (no training here)."""

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from part3_support import copy_store, digit_file, metric, running_service, wait_until

from app import images
from app.models import mnist
from app.part3 import small_uploads
from app.store import ModelStore

MAX_UPLOAD = 2 << 20  # small, so the 413 test sends little


@pytest.fixture(scope="module")
def client(models_dir):
    with running_service(models_dir, trainer=False, max_upload_bytes=MAX_UPLOAD) as client:
        yield client


@pytest.fixture(scope="module")
def served_model(models_dir):
    """The digit model as the store holds it, to compute the answers the service should give."""
    store = ModelStore("mnist", models_dir)
    return store.load(store.active(), mnist.load)


def test_root_keeps_the_workshop_answer(client):
    assert client.get("/").json() == {"Hello": "World"}


def test_info_keeps_the_workshop_keys(client):
    info = client.get("/info/").json()
    assert info["Num of model in training"] == 0
    assert info["Num of trained models"] == 1
    assert info["serving"] == {"penguins": 1, "mnist": 1}


def test_penguin_prediction_keeps_part1_contract_with_units(client):
    plain = client.get("/predict/", params={"bill": "40.3", "flipper": "195"})
    assert plain.status_code == 200, plain.text
    assert {**plain.json(), "prediction_id": "..."} == {  # the id is tested in test_feedback.py
        "parameters": {"bill_length": 40.3, "flipper_length": 195.0},
        "result": "Adelie",
        "version": 1,
        "prediction_id": "...",
    }
    with_units = client.get("/predict/", params={"bill": "4.03cm", "flipper": "19.5 cm"}).json()
    assert with_units["parameters"] == pytest.approx({"bill_length": 40.3, "flipper_length": 195.0})
    assert with_units["result"] == plain.json()["result"]


@pytest.mark.parametrize(
    ("bill", "flipper", "named"),
    [("40.3furlongs", "195", "bill"), ("nan", "195", "bill"), ("40", "-3", "flipper"), ("40", "", "flipper")],
)
def test_bad_penguin_measurements_are_422_naming_the_parameter(client, bill, flipper, named):
    response = client.get("/predict/", params={"bill": bill, "flipper": flipper})
    assert response.status_code == 422
    assert any(error["loc"][-1] == named for error in response.json()["detail"])


def test_digit_prediction_keeps_part2_contract_and_names_the_version(client, served_model):
    name, content, kind = digit_file(7)
    response = client.post("/predict/", files={"file": (name, content, kind)})
    assert response.status_code == 200, response.text
    expected = mnist.predict_digits(served_model, images.decode_digit(content)[None])[0]
    assert {**response.json(), "prediction_id": "..."} == {
        "filename": name,
        "result": str(expected),
        "version": 1,
        "prediction_id": "...",
    }


def test_a_busy_worker_answers_single_images_as_a_quiet_one(client, served_model, monkeypatch):
    """While requests queue up, single images are decoded and predicted together (predictor.Coalescer):
    every answer is still the one the model gives that image alone, and a bad file is refused alone."""
    predictor = client.app.state.service.predictor
    groups = []
    predict_waiting = predictor.coalescer._predict_waiting
    monkeypatch.setattr(predictor.load, "busy", lambda: True)
    monkeypatch.setattr(
        predictor.coalescer,
        "_predict_waiting",
        lambda: groups.append(len(predictor.coalescer._waiting)) or predict_waiting(),
    )
    digits = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]
    bad = ("notes.png", b"hello, not an image", "image/png")
    uploads = [digit_file(digit) for digit in digits[:6]] + [bad] + [digit_file(digit) for digit in digits[6:]]

    def predict(upload):
        return client.post("/predict/", files={"file": upload})

    with ThreadPoolExecutor(4) as pool:  # the requests overlap on the service's event loop
        responses = list(pool.map(predict, uploads))
    refused = responses.pop(6)
    expected = mnist.predict_digits(served_model, np.stack([images.decode_digit(digit_file(d)[1]) for d in digits]))
    assert [response.status_code for response in responses] == [200] * len(digits)
    assert [response.json()["result"] for response in responses] == [str(digit) for digit in expected]
    assert refused.status_code == 422 and "notes.png" in refused.json()["detail"]
    assert sum(groups) == len(uploads), "every image went through the coalescer"


def test_batch_prediction_answers_each_image_in_order(client, served_model):
    files = [digit_file(digit) for digit in (3, 1, 4, 1, 5, 9, 2, 6)]
    response = client.post("/predict/batch/", files=[("files", file) for file in files])
    assert response.status_code == 200, response.text
    body = response.json()
    pixels = np.stack([images.decode_digit(content) for _, content, _ in files])
    expected = mnist.predict_digits(served_model, pixels)
    assert body["version"] == 1
    assert [(r["filename"], r["result"]) for r in body["results"]] == [
        (name, str(digit)) for (name, _, _), digit in zip(files, expected, strict=True)
    ]


@pytest.mark.parametrize(
    ("upload", "problem"),
    [
        (("notes.png", b"hello, not an image", "image/png"), "not a readable image"),
        (("empty.png", b"", "image/png"), "is empty"),
        (("big.png", images.encode_png(np.zeros((56, 56), np.uint8)), "image/png"), "56x56"),
    ],
)
def test_bad_images_are_422_naming_the_file_and_problem(client, upload, problem):
    single = client.post("/predict/", files={"file": upload})
    batch = client.post("/predict/batch/", files=[("files", digit_file(1)), ("files", upload)])
    for response in (single, batch):
        assert response.status_code == 422, response.text
        assert upload[0] in response.json()["detail"] and problem in response.json()["detail"]


def test_a_plain_upload_takes_the_lean_path_and_gets_the_same_answer(client, monkeypatch):
    """app/part3/small_uploads.py: httpx's one-file body is read by the lean path; the same body with a
    charset parameter is left to Starlette's parser; both get the same answer."""
    used = []
    lean_form = small_uploads.files_form
    monkeypatch.setattr(small_uploads, "files_form", lambda *args: used.append(lean_form(*args)) or used[-1])
    request = httpx.Request("POST", "http://test/predict/", files={"file": digit_file(7)})
    content_type, body = request.headers["content-type"], request.read()
    lean = client.post("/predict/", content=body, headers={"content-type": content_type})
    full = client.post("/predict/", content=body, headers={"content-type": content_type + "; charset=utf-8"})
    assert [form is not None for form in used] == [True, False]
    assert lean.status_code == full.status_code == 200, (lean.text, full.text)
    assert {**lean.json(), "prediction_id": None} == {**full.json(), "prediction_id": None}  # each its own id


def test_missing_file_is_422_naming_the_field(client):
    response = client.post("/predict/")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "file"]


def test_too_large_upload_is_413_before_it_is_read(client):
    oversized = ("huge.zip", b"\0" * (MAX_UPLOAD + 1), "application/zip")
    response = client.post("/predict/batch/", files={"files": oversized})
    assert response.status_code == 413
    assert f"{MAX_UPLOAD} bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit counts the bytes as they arrive
        for _ in range(MAX_UPLOAD // 65536 + 2):
            yield b"\0" * 65536

    response = client.post(
        "/predict/batch/", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert response.status_code == 413
    assert f"{MAX_UPLOAD} bytes" in response.json()["detail"]


def test_more_files_than_allowed_is_refused_naming_the_limit(models_dir, tmp_path):
    with running_service(copy_store(models_dir, tmp_path / "models"), trainer=False, max_files=3) as small:
        response = small.post("/predict/batch/", files=[("files", digit_file(d)) for d in range(4)])
        assert response.status_code == 400
        assert "Maximum number of files is 3" in response.json()["detail"]


def test_queued_jobs_wait_their_turn_and_a_full_queue_is_429(models_dir, tmp_path):
    folder = copy_store(models_dir, tmp_path / "models")
    with running_service(folder, trainer=False, max_queued_jobs=2) as service:  # the jobs stay queued
        accepted = [service.post("/retrain/") for _ in range(2)]
        assert [response.status_code for response in accepted] == [202, 202]
        job = service.get(accepted[0].headers["location"]).json()
        assert (job["status"], job["kind"], job["progress"]) == ("queued", "retrain", "waiting for the jobs before it")
        full = service.post("/retrain/")
        assert full.status_code == 429 and full.headers["retry-after"]
        assert "2 training jobs are already waiting" in full.json()["detail"]
        assert [job["id"] for job in service.get("/jobs/").json()] == [r.json()["id"] for r in accepted]


def test_unknown_and_malformed_job_ids(client):
    assert client.get(f"/jobs/{'0' * 32}").status_code == 404
    assert client.get("/jobs/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    assert client.get("/jobs/not-a-job-id").status_code == 422


def test_models_lists_versions_with_their_metadata(client, models_dir):
    models = client.get("/models/").json()
    assert set(models) == {"penguins", "mnist"}
    for name, listing in models.items():
        stored = ModelStore(name, models_dir).get(1).metadata
        assert listing["active"] == listing["serving"] == 1
        assert [{**version, "live": None} for version in listing["versions"]] == [
            {**stored, "status": "active", "live": None}
        ]
        assert stored["gate"]["decision"] == "promoted"
        assert re.fullmatch(r"[0-9a-f]{64}", listing["versions"][0]["sha256"])


def test_activating_an_unknown_version_is_404_and_changes_nothing(client, models_dir):
    response = client.post("/models/mnist/99/activate")
    assert response.status_code == 404
    assert "99" in response.json()["detail"]
    unknown = client.post("/models/cats/1/activate")
    assert unknown.status_code == 404 and "no model 'cats'" in unknown.json()["detail"]
    assert ModelStore("mnist", models_dir).active() == 1


def test_a_corrupt_version_is_not_served_and_readiness_says_why(models_dir, tmp_path):
    folder = copy_store(models_dir, tmp_path / "models")
    version = ModelStore("mnist", folder).get(1)
    version.serving_file.write_bytes(version.serving_file.read_bytes() + b"tampered")  # what a worker reads
    with running_service(folder, wait_ready=False, trainer=False) as service:
        wait_until(lambda: "could not be loaded" in service.get("/health/ready").json()["detail"], "the load fails")
        ready = service.get("/health/ready")
        assert ready.status_code == 503
        assert "mnist version 1 could not be loaded (CorruptModel" in ready.json()["detail"]
        assert service.post("/predict/", files={"file": digit_file(1)}).status_code == 503
        assert service.get("/predict/", params={"bill": 40, "flipper": 190}).status_code == 200


def test_health_live_and_ready_name_the_worker(client):
    live = client.get("/health/live")
    ready = client.get("/health/ready")
    assert live.status_code == ready.status_code == 200
    assert ready.json()["models"] == {"penguins": 1, "mnist": 1}
    assert ready.json()["pid"] == int(ready.headers["x-worker-pid"])


def test_metrics_count_requests_per_route_template_and_predictions_per_version(client):
    before = client.get("/metrics").text
    client.post("/predict/batch/", files=[("files", digit_file(d)) for d in (0, 1, 2)])
    client.get(f"/jobs/{'a' * 32}")
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    assert metric(text, "workshop_predictions_total", model="mnist", version="1") == (
        metric(before, "workshop_predictions_total", model="mnist", version="1") + 3
    )
    route = {"method": "POST", "route": "/predict/batch/", "status": "200"}
    assert (
        metric(text, "workshop_http_requests_total", **route)
        == metric(before, "workshop_http_requests_total", **route) + 1
    )
    # Requests are labelled by their route template, never by the concrete id.
    assert metric(text, "workshop_http_requests_total", route="/jobs/{job_id}", status="404") >= 1
    assert "a" * 32 not in text
    assert metric(text, "workshop_http_request_duration_seconds_count", method="GET", route="/health/ready") >= 1
    for status in ("queued", "running", "succeeded", "failed"):
        assert f'workshop_training_jobs{{status="{status}"}}' in text


def test_upload_page_posts_files_and_follows_the_job_without_external_assets(client):
    response = client.get("/upload/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert re.search(r'<input[^>]*type="file"[^>]*multiple', page)
    assert "fetch(`../${mode}/`" in page  # sends the form to /train/ or /retrain/
    assert "jobs/${jobId}" in page  # polls the job it started
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must load nothing from elsewhere"


def test_a_wrong_method_is_405_listing_every_allowed_method(client):
    response = client.request("OPTIONS", "/predict/")  # /predict/ has a GET and a POST route
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert "GET, POST" in response.json()["detail"]
    assert client.delete("/jobs/").headers["allow"] == "GET"


def test_openapi_documents_every_public_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in [
        "/",
        "/info/",
        "/predict/",
        "/predict/batch/",
        "/train/",
        "/retrain/",
        "/jobs/",
        "/jobs/{job_id}",
        "/models/",
        "/models/{name}/{version}/activate",
        "/health/live",
        "/health/ready",
    ]:
        assert path in paths, path


def test_model_changing_routes_are_open_when_no_key_is_set(client):
    # No WORKSHOP_API_KEY here: a bad upload reaches validation (422), not the key check (401).
    response = client.post("/train/", files={"files": ("img_x.png", b"not an image", "image/png")})
    assert response.status_code == 422
    assert "img_x.png" in response.json()["detail"]


def test_training_uploads_are_checked_before_a_job_exists(client):
    before = client.get("/jobs/").json()
    unlabelled = client.post("/train/", files={"files": digit_file(3)})  # test_img3.png has no _<label>
    assert unlabelled.status_code == 422 and "no label" in unlabelled.json()["detail"]
    two_digit = client.post("/train/", files={"files": ("img_12.png", digit_file(1)[1], "image/png")})
    assert two_digit.status_code == 422 and "label 12" in two_digit.json()["detail"]
    epochs = client.post("/train/", files={"files": ("img_1.png", digit_file(1)[1], "image/png")}, data={"epochs": "0"})
    assert epochs.status_code == 422 and epochs.json()["detail"][0]["loc"][-1] == "epochs"
    assert client.get("/jobs/").json() == before


def test_predictions_answer_without_a_thread_pool_hop(client, monkeypatch):
    """A penguin and a single image are answered on the event loop: each hop to the thread pool
    costs about 0.1 ms here, more than the work (bench/RESULTS.md). A `def` route or dependency
    on these paths would bring the hop back; a batch still goes to a thread."""
    import anyio.to_thread

    hops = []
    run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(function, *args, **kwargs):
        hops.append(getattr(function, "__qualname__", repr(function)))
        return await run_sync(function, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    assert client.get("/predict/", params={"bill": "40.3", "flipper": "195"}).status_code == 200
    assert client.post("/predict/", files={"file": digit_file(7)}).status_code == 200
    assert hops == []
    files = [("files", digit_file(digit)) for digit in (1, 2)]
    assert client.post("/predict/batch/", files=files).status_code == 200
    assert any("_decode_and_predict" in hop for hop in hops), hops


def test_single_digit_answer_is_still_documented_by_its_model(client):
    operation = client.get("/openapi.json").json()["paths"]["/predict/"]["post"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/DigitPrediction"}
