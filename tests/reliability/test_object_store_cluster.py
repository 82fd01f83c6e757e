"""Past one machine without a shared disk: the models in S3-compatible object storage (moto's S3 server
as a process of its own on loopback, behind a doorway the test can close), the queue, the jobs, their
examples, the feedback and its secret in Redis; two API processes and two trainers, each in a folder
of its own with its own download cache, no folder in common.

- eight fine-tunes, sent in turn to one API then the other, chain eight versions (each one's parent the
  version before), and both APIs serve each new version; feedback given to one counts on the other;
- a trainer SIGKILLed mid-upload (its files in the bucket, the manifest that would make them a version
  not written) leaves no version anyone sees; the next training removes its objects and takes the
  next number;
- the store unreachable: both APIs keep predicting, /health/ready says why, naming the store and never
  its credentials, and training answers 503 naming it; the store's server killed and started again
  (its journal replayed) loses nothing, and training goes on.
Every wait polls for a state; its deadline is only a safety net.
"""

import os
import time
from pathlib import Path

import pytest
from bad_requests import digit_png
from part3_support import API_KEY, ServiceProcess, wait_for_job, wait_until
from reliability_support import KEY, TrainerProcess, fine_tune

from app.storage.copy_store import copy_model
from app.storage.s3_client import s3_client
from app.store import ModelStore
from tests.s3_support import CREDENTIALS, Doorway, JournaledMotoServer, environment

pytestmark = pytest.mark.slow
FINE_TUNES = 8
BUCKET = "workshop-models"
STORE_URL = f"s3://{BUCKET}/team"
FAULTS = Path(__file__).resolve().parent / "faults"
PRIVATE_FILES = (".queue.sqlite3", ".feedback.sqlite3", ".secret", ".jobs")  # what a shared folder would hold


class Cluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.moto = JournaledMotoServer(root / "moto")
        self.doorway = Doorway(self.moto.port)
        self.faults = root / "faults"
        self.faults.mkdir()
        self.here = environment(
            **CREDENTIALS, AWS_ENDPOINT_URL=self.doorway.url, WORKSHOP_MODELS_CACHE=str(root / "test-cache")
        )
        self.apis: list[ServiceProcess] = []
        self.trainers: list[TrainerProcess] = []

    def start(self, seeded: Path, redis_url: str) -> None:
        root = self.root
        self.moto.start()
        self.doorway.open()
        self.here.__enter__()
        s3_client().create_bucket(Bucket=BUCKET)
        for name in ("penguins", "mnist"):
            copy_model(ModelStore(name, seeded), ModelStore(name, STORE_URL))
        common = {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL": self.doorway.url,
            "WORKSHOP_MODELS_URL": STORE_URL,
            "WORKSHOP_QUEUE_URL": redis_url,
            "WORKSHOP_API_KEY": API_KEY,
            "WORKSHOP_MNIST_SOURCE": "bundled",
            "WORKSHOP_POLL_INTERVAL": "0.3",
            "WORKSHOP_HEARTBEAT_INTERVAL": "0.5",
            "WORKSHOP_HEARTBEAT_TIMEOUT": "8",
        }
        for name in ("api-a", "api-b"):
            (root / name).mkdir()
            env = {**common, "WORKSHOP_MODELS_CACHE": str(root / name / "cache")}
            self.apis.append(ServiceProcess(root / name / "models", env=env, cwd=root / name, log=root / name / "log"))
        for name in ("trainer-a", "trainer-b"):
            self.add_trainer(name, common)
        self.common = common
        for api in self.apis:
            wait_until(lambda api=api: (r := api.answers("/health/ready")) and r.status_code == 200, "the API is ready")

    def add_trainer(self, name: str, common: dict[str, str] | None = None) -> None:
        env = {
            **(common or self.common),
            "WORKSHOP_MODELS_DIR": str(self.root / name / "models"),
            "WORKSHOP_MODELS_CACHE": str(self.root / name / "cache"),
            "WORKSHOP_FAULT_DIR": str(self.faults),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(FAULTS), os.environ.get("PYTHONPATH")])),
        }
        self.trainers.append(TrainerProcess(self.root / name, env))

    def store(self, name: str = "mnist") -> ModelStore:
        """The store as a newcomer sees it: a fresh download cache, so every file read is checked anew."""
        return ModelStore(name, STORE_URL, cache=self.root / f"reader-{time.monotonic_ns()}")

    def uploads(self, name: str = "mnist") -> set[str]:
        return {key for key in self.state() if key.startswith(f"team/{name}/uploads/")}

    def state(self) -> dict[str, object]:
        """Every object in the bucket with its ETag (content digest), except the trainers' lease."""
        pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {
            entry["Key"]: entry["ETag"]
            for page in pages
            for entry in page.get("Contents", [])
            if not entry["Key"].endswith("training-lease")
        }

    def stop(self) -> None:
        for process in [*self.apis, *self.trainers]:
            process.stop() if isinstance(process, ServiceProcess) else process.kill()
        self.doorway.close()
        self.moto.kill()
        self.here.__exit__(None, None, None)


@pytest.fixture(scope="module")
def cluster(seeded_store, redis_server, tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("s3-cluster"))
    try:
        cluster.start(seeded_store, redis_server.url)
        yield cluster
    finally:
        cluster.stop()
    for name in ("api-a", "api-b", "trainer-a", "trainer-b", "trainer-c"):  # nothing needed a shared folder
        folder = cluster.root / name / "models"
        assert not [file for file in PRIVATE_FILES if (folder / file).exists()], f"{name} wrote to its models folder"


def serving(api: ServiceProcess, name: str = "mnist") -> int | None:
    return api.get("/health/ready").json()["models"][name]


def test_eight_fine_tunes_chain_eight_versions_and_both_apis_serve_each(cluster):
    apis, start = cluster.apis, cluster.store().active()
    finished, delays = [], []
    for n in range(FINE_TUNES):
        api = apis[n % 2]
        job = wait_for_job(api.get, fine_tune(api, n)["id"])
        assert job["status"] == "succeeded", job
        ended = time.monotonic()
        for other in apis:
            number = job["version"]
            wait_until(lambda other=other, number=number: serving(other) == number, f"both APIs serve version {number}")
        delays.append(time.monotonic() - ended)
        finished.append(job)
    assert [job["version"] for job in finished] == list(range(start + 1, start + FINE_TUNES + 1))
    assert [job["parent"] for job in finished] == [start] + [job["version"] for job in finished[:-1]]
    store = cluster.store()
    for job in finished:  # each version names its job and what it learnt, and its files are whole
        version = store.get(job["version"])
        assert (version.metadata["data"]["job"], version.metadata["data"]["n_uploaded"]) == (job["id"], job["n_images"])
        assert store.load_serving(job["version"], lambda path: path.read_bytes())
    # Feedback taken by one API counts on the other: the labels are in Redis, not in a replica's folder.
    answered = apis[0].client.post("/predict/", files={"file": ("x.png", digit_png(7), "image/png")}).json()
    assert apis[1].client.post("/feedback/", json={"prediction_id": answered["prediction_id"], "label": 7}).is_success
    versions = apis[0].get("/models/").json()["mnist"]["versions"]
    live = next(version["live"] for version in versions if version["version"] == answered["version"])
    assert live["n_labels"] == 1 and live["accuracy"] == float(answered["result"] == "7"), live
    print("trainers used:", sorted({job["trainer"] for job in finished}))
    print("a job's end to both APIs serving it (s, as seen by the test's polling):", [round(d, 2) for d in delays])


def test_a_trainer_killed_mid_upload_leaves_no_version_and_the_next_training_tidies(cluster):
    apis, faults = cluster.apis, cluster.faults
    before, uploads_before = cluster.store().versions(), cluster.uploads()
    (faults / "pause-at").write_text("uploaded")
    doomed = fine_tune(apis[0], 0)
    marker = faults / "uploaded.reached"
    pid = int(wait_until(lambda: marker.exists() and marker.read_text().strip(), "a trainer stops mid-upload"))
    (faults / "pause-at").unlink()
    orphans = cluster.uploads() - uploads_before
    assert orphans, "the paused trainer had uploaded its files"
    assert cluster.store().versions() == before, "files without their manifest are no version"
    victim = next(trainer for trainer in cluster.trainers if trainer.pid == pid)
    victim.kill()
    cluster.trainers.remove(victim)
    for api in apis:
        assert [version["version"] for version in api.get("/models/").json()["mnist"]["versions"]] == before

    following = fine_tune(apis[1], 1)
    failed = wait_for_job(apis[1].get, doomed["id"])
    assert failed["status"] == "failed" and "heartbeat" in failed["error"], failed
    done = wait_for_job(apis[0].get, following["id"])
    assert done["status"] == "succeeded" and done["version"] == before[-1] + 1, done
    assert not orphans & cluster.uploads(), "the next training removed what the killed one uploaded"
    store = cluster.store()
    for number in store.versions():  # every version's files download whole (sha256 checked)
        assert store.load(number, lambda path: path.stat().st_size) > 0


def test_the_store_unreachable_serving_goes_on_and_restarted_it_has_lost_nothing(cluster):
    apis = cluster.apis
    before = cluster.state()
    cluster.doorway.close()
    try:
        for api in apis:
            detail = wait_until(
                lambda api=api: (
                    (body := api.get("/health/ready").json())["detail"]
                    and "model store" in body["detail"]
                    and body["detail"]
                ),
                "the API notices the store is gone",
            )
            assert STORE_URL in detail and not any(secret in detail for secret in CREDENTIALS.values()), detail
            assert api.get("/health/ready").status_code == 200, "it serves what it holds"
            digit = api.client.post("/predict/", files={"file": ("x.png", digit_png(3), "image/png")})
            assert digit.status_code == 200, digit.text
            assert api.get("/predict/", params={"bill": "40.3", "flipper": "195"}).status_code == 200
            for response in (
                api.client.post("/train/", files={"files": ("img1_1.png", digit_png(1), "image/png")}, headers=KEY),
                api.client.post("/retrain/", headers=KEY),
                api.client.post("/models/penguins/jobs", json={"kind": "retrain"}, headers=KEY),
            ):
                assert response.status_code == 503, response.text
                assert STORE_URL in response.json()["detail"] and int(response.headers["retry-after"]) > 0
        cluster.moto.kill()  # and its memory: only its journal remains
        cluster.moto.start()
    finally:
        cluster.doorway.open()
    for api in apis:
        wait_until(lambda api=api: api.get("/health/ready").json()["detail"] is None, "the API reaches the store again")
    assert cluster.state() == before, "every object is back, unchanged"
    if not cluster.trainers:
        cluster.add_trainer("trainer-c")
    job = wait_for_job(apis[1].get, fine_tune(apis[1], 2)["id"])
    assert job["status"] == "succeeded" and job["version"] == cluster.store().versions()[-1], job
    for api in apis:
        wait_until(lambda api=api: serving(api) == job["version"], "both APIs serve the new version")
