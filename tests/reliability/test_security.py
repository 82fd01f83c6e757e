"""Security of the Part 3 service: the API key, uploaded names, zips, and what it agrees to load.

In-process (spies and tampering on a private store): the key is compared with hmac.compare_digest;
zips are read without ZipFile.extract/extractall; every model is loaded from the service's own store
after its sha256 was computed; a version whose file was tampered with, or a penguin model holding a
type off the trusted list, is never served (the previous version keeps serving, also after a
restart). As a real process (`fastapi run`, debug logging): the key never appears in its log, the
trainer's environment or anything written under the models folder; uploaded file names and zip
entries, some climbing out with ../, never become files anywhere.

The container's non-root user is checked structurally by tests/container/test_non_root.py.
"""

import hmac
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

import pytest
import skops.io as sio
from bad_requests import digit_png, zip_of
from fastapi.testclient import TestClient
from part3_support import API_KEY, copy_store, running_service, wait_for_job, wait_until
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

import app.store
from app import onnx_serving, promotion
from app.models import mnist, penguins
from app.part3.settings import Settings
from app.part3.training_job import export_missing_serving_files
from app.paths import PROJECT_ROOT
from app.storage import checksums
from app.store import METADATA_FILE, ModelStore
from tests.exercise_guard import EXERCISES
from tests.fresh_modules import import_fresh

pytestmark = pytest.mark.slow
KEY = {"X-API-Key": API_KEY}
WRONG_KEYS = ["", "wrong", API_KEY[:-1], API_KEY + " ", API_KEY.upper(), API_KEY + "\u00e9"]
SHORT_WAIT = 60.0


def served_versions(client) -> dict[str, int]:
    digit = client.post("/predict/", files={"file": ("x.png", digit_png(1), "image/png")}).json()["version"]
    penguin = client.get("/predict/", params={"bill": "40.3", "flipper": "195"}).json()["version"]
    return {"mnist": digit, "penguins": penguin}


def add_version_by_hand(store: ModelStore, write_model) -> int:
    """A version put in the store as publish does (folder complete, then renamed into place), whose
    metadata is the newest version's, file and sha256 included: `write_model(path)` then replaces
    the training file and the serving file. What an attacker with write access to the volume, or a
    bad disk, would leave."""
    newest = store.get(store.latest())
    number = newest.number + 1
    temp = store.path / f".tmp-by-hand-{uuid.uuid4().hex}"
    shutil.copytree(newest.path, temp)
    write_model(temp / newest.metadata["file"])  # what Parts 1 and 2 and the trainer load
    if newest.serving_file is not None:
        write_model(temp / newest.serving_file.name)  # what Part 3 serves
    (temp / METADATA_FILE).write_text(json.dumps({**newest.metadata, "version": number}))
    os.rename(temp, store.path / str(number))
    return number


@pytest.fixture
def store_copy(seeded_store, tmp_path):
    return copy_store(seeded_store, tmp_path / "models")


# -- the key ---------------------------------------------------------------------------------------
def test_the_key_is_compared_in_constant_time_and_wrong_keys_get_401(store_copy, monkeypatch):
    compared = []
    real_compare = hmac.compare_digest

    def spy(given, expected):
        compared.append((given, expected))
        return real_compare(given, expected)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    with running_service(store_copy, trainer=False, api_key=API_KEY) as client:
        for wrong in WRONG_KEYS:
            for path in ("/train/", "/retrain/", "/train/feedback/", "/models/mnist/1/activate"):
                response = client.post(path, headers={"X-API-Key": wrong.encode("utf-8")})
                assert response.status_code == 401, (path, wrong, response.text)
                assert "X-API-Key" in response.json()["detail"] and API_KEY not in response.text
        assert client.post("/models/mnist/1/activate").status_code == 401  # no key at all
        assert client.post("/models/mnist/1/activate", headers=KEY).status_code == 200
    expected = API_KEY.encode()
    assert (expected, expected) in compared
    # (headers travel as latin-1: the server sees the UTF-8 bytes of "é" as two characters)
    assert {wrong.encode().decode("latin-1").encode() for wrong in WRONG_KEYS if wrong} <= {g for g, _ in compared}
    assert all(secret == expected for _, secret in compared)


# -- zips --------------------------------------------------------------------------------------
def test_zip_entries_are_read_in_memory_never_extracted(store_copy, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a zip entry was extracted to disk")

    monkeypatch.setattr(zipfile.ZipFile, "extract", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", refuse)
    entries = [(f"train_img/img{n}_{n}.png", digit_png(n)) for n in range(10)]
    with running_service(store_copy, trainer=False, api_key=API_KEY) as client:
        accepted = client.post(
            "/retrain/",
            files={"files": ("d.zip", zip_of(entries), "application/zip")},
            headers=KEY,
            data={"epochs": "1"},
        )
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["n_images"] == 10
        climbing = zip_of([("../../../x_1.png", digit_png(1))])
        refused = client.post("/train/", files={"files": ("e.zip", climbing, "application/zip")}, headers=KEY)
        assert refused.status_code == 422 and "unsafe path" in refused.json()["detail"]


# -- what the service loads ----------------------------------------------------------------------
def test_models_are_loaded_only_from_the_store_after_their_sha256(store_copy, monkeypatch):
    hashed, loaded = [], []
    real_sha, real_open_session = checksums.sha256_of, onnx_serving.open_session
    # Every load checks a file's sha256 in app/storage/checksums.py, whichever backend holds the store.
    monkeypatch.setattr(checksums, "sha256_of", lambda path: hashed.append(Path(path)) or real_sha(path))
    # Part 3 opens serving files only, each in an ONNX Runtime session. The publish below opens its staged
    # file too (the parity check), in this test's thread: only the service's threads count as loads.
    publisher = threading.get_ident()

    def open_session(path, *args):
        if threading.get_ident() != publisher:
            loaded.append(Path(path))
        return real_open_session(path, *args)

    monkeypatch.setattr(onnx_serving, "open_session", open_session)
    with running_service(store_copy, trainer=False, api_key=API_KEY) as client:
        store = ModelStore("mnist", store_copy)
        model = mnist.load(store.get(1).model_file)
        number = promotion.publish(mnist.MODEL, mnist.TrainingResult(model), {"parent": 1}, store).number
        wait_until(lambda: served_versions(client)["mnist"] == number, "the new version serves", SHORT_WAIT)
    assert loaded, "the service loaded nothing?"
    for path in loaded:
        assert path.resolve().is_relative_to(store_copy.resolve()), path
        assert path.name == "model.onnx", path
        assert path in hashed[: hashed.index(path) + 1], f"{path} loaded before its sha256 was checked"


def flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("model", ["mnist", "penguins"])
def test_a_tampered_version_is_never_served_even_after_a_restart(model, store_copy):
    store = ModelStore(model, store_copy)
    with running_service(store_copy, trainer=False, api_key=API_KEY) as client:
        before = served_versions(client)
        tampered = add_version_by_hand(store, flip_bytes)
        service = client.app.state.service
        wait_until(lambda: service.kept.problems.get(model, (None,))[0] == tampered, "the service tries it", SHORT_WAIT)
        assert served_versions(client) == before
        assert "sha256" in service.kept.problems[model][1]
        listing = client.get("/models/").json()[model]
        assert (listing["active"], listing["serving"]) == (tampered, before[model])
    # A worker starting now must not be left with nothing to serve: the last good version serves.
    with running_service(store_copy, trainer=False, api_key=API_KEY, wait_ready=False) as client:
        wait_until(
            lambda: client.get("/health/ready").status_code == 200,
            f"a restarted service serves the last good {model} version",
            SHORT_WAIT,
        )
        assert served_versions(client) == before


def test_the_store_falls_back_to_the_newest_version_that_loads(store_copy):
    store = ModelStore("penguins", store_copy)
    add_version_by_hand(store, flip_bytes)
    add_version_by_hand(store, lambda path: path.write_bytes(path.read_bytes()[:-100]))  # (flipping again would undo)
    assert store.versions() == [1, 2, 3]
    number, pipeline = store.load_newest_loadable(penguins.MODEL.load)
    assert number == 1 and pipeline.predict  # the two tampered ones were checked and skipped
    with pytest.raises(app.store.ModelNotFound):
        store.load_newest_loadable(penguins.MODEL.load, below=1)


@pytest.mark.parametrize(
    ("app_file", "model"),
    [
        ("app/part1/main.py", "penguins"),
        ("app/part2/main.py", "mnist"),
        ("solutions/part2/challenge_startup.py", "mnist"),
        ("solutions/part2/ex4_race_free.py", "mnist"),
    ],
)
def test_part1_and_part2_services_start_on_the_last_good_version_when_the_newest_is_tampered(
    app_file, model, store_copy, monkeypatch
):
    monkeypatch.setenv("WORKSHOP_MODELS_DIR", str(store_copy))
    store = ModelStore(model, store_copy)
    good = store.latest()
    tampered = add_version_by_hand(store, flip_bytes)
    module = import_fresh(PROJECT_ROOT / app_file)
    with TestClient(module.app) as client:
        if model == "penguins":
            assert client.get("/").json()["model"]["version"] == good
            assert client.get("/predict/", params={"bill": "40.3", "flipper": "195"}).status_code == 200
        else:
            answer = client.post("/predict/", files={"file": ("x.png", digit_png(1), "image/png")}).json()
            if store.latest() == tampered:
                assert answer["version"] == good
            else:  # exercise 4 trains at start-up: a fine-tune of the last good version, not of the tampered one
                assert answer["version"] == store.latest() and store.get(store.latest()).metadata["parent"] == good


def test_a_penguin_model_with_a_type_off_the_trusted_list_is_never_served(store_copy):
    """A serving worker never opens a training file; the trainer side, which does when it exports a
    serving file for an older version, refuses one that holds a type off skops' trusted list."""
    store = ModelStore("penguins", store_copy)

    def hostile(path: Path) -> None:  # loading it would be harmless; using it would run os.system
        good = sio.load(path, trusted=penguins.MODEL.trusted_types)
        sio.dump(Pipeline([("run", FunctionTransformer(os.system)), *good.steps]), path)

    # Published properly (the sha256 of the hostile file in its metadata), as a store made before
    # serving files would hold it: only the type list can stop it.
    old_style = {key: value for key, value in store.get(1).metadata.items() if not key.startswith("serving_")}
    with running_service(store_copy, api_key=API_KEY) as client:
        before = served_versions(client)
        number = store.publish(lambda folder: hostile_copy(store, folder, hostile), old_style).number
        service = client.app.state.service
        wait_until(lambda: "penguins" in service.kept.waiting, "the service notices the version", SHORT_WAIT)
        assert served_versions(client) == before
        failed = export_missing_serving_files(Settings(models_dir=store_copy))
        assert "Untrusted" in failed[f"penguins {number}"]
        assert store.get(number).serving_file is None
        time.sleep(1.0)  # five polls of the running service: still the version it had
        assert served_versions(client) == before
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match="system"):
        penguins.MODEL.load(store.get(number).model_file)


def hostile_copy(store: ModelStore, folder: Path, make_hostile) -> str:
    source = store.get(1)
    shutil.copy(source.model_file, folder / source.metadata["file"])
    make_hostile(folder / source.metadata["file"])
    return source.metadata["file"]


# -- the real process: logs, environments, names on disk -------------------------------------------
def files_named_like(token: str, *roots: Path) -> list[str]:
    found = []
    for root in roots:
        for folder, folders, files in os.walk(root, onerror=lambda error: None):
            found += [os.path.join(folder, name) for name in [*folders, *files] if token in name]
            # exercises/ is the learner's, which no maintainers' test reads (tests/exercise_guard.py)
            folders[:] = [name for name in folders if Path(folder, name) != EXERCISES]
    return found


def test_the_key_stays_out_of_logs_and_upload_names_never_become_paths(real_service):
    service, models_dir = real_service, real_service.models_dir
    token = f"evil{uuid.uuid4().hex[:8]}"
    names = [
        f"../../{token}_1.png",
        f"/tmp/{token}_2.png",
        f"..\\..\\{token}_3.png",
        f"{token}\x00_4.png",
        f"~/{token}_5.png",
        f"$HOME/{token}_6.png",
        f"%2e%2e%2f{token}_7.png",
    ]
    archive = zip_of([(f"nested/{token}/{token}_8.png", digit_png(8)), (f"{token}_9.png", digit_png(9))])
    files = [("files", (name, digit_png(int(name[-5])), "image/png")) for name in names]
    files.append(("files", (f"../{token}.zip", archive, "application/zip")))

    # the shared service (conftest.py): its log holds every request the other modules sent too
    for wrong in [key for key in WRONG_KEYS if key and key == key.strip() and key.isascii()]:  # what h11 sends
        assert service.client.post("/train/", files=files, headers={"X-API-Key": wrong}).status_code == 401
    for name in names:  # the same names on the prediction routes
        assert service.client.post("/predict/", files={"file": (name, digit_png(3), "image/png")}).status_code == 200
    batch = service.client.post("/predict/batch/", files=files[:-1])
    assert batch.status_code == 200, batch.text
    accepted = service.client.post("/train/", files=files, headers=KEY, data={"epochs": "1"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["n_images"] == len(names) + 2
    running = wait_until(
        lambda: (job := service.get(f"/jobs/{accepted.json()['id']}").json())["trainer_pid"] and job, "trainer"
    )
    trainer_environment = Path(f"/proc/{running['trainer_pid']}/environ").read_bytes()  # read while it trains
    done = wait_for_job(service.get, accepted.json()["id"])
    assert done["status"] == "succeeded", done
    assert service.client.post(f"/models/mnist/{done['version']}/activate", headers=KEY).status_code == 200

    assert b"WORKSHOP_MODELS_DIR=" in trainer_environment and API_KEY.encode() not in trainer_environment
    log = service.log.read_text(errors="replace")
    assert "POST /train/" in log, "the log should hold the requests"  # access log: it was captured
    assert API_KEY not in log
    written = [path for path in models_dir.rglob("*") if path.is_file()]
    assert not [path for path in written if API_KEY.encode() in path.read_bytes()]
    assert not files_named_like(token, models_dir, PROJECT_ROOT, Path(tempfile.gettempdir()), Path.home())
    for name in names:
        for base in (PROJECT_ROOT, models_dir, models_dir / ".jobs", Path(tempfile.gettempdir())):
            assert not (base / name.replace("\x00", "")).exists()
