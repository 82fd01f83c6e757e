"""The distributed mode, as on several machines: one real Redis, one model store, two API processes
and two trainers (`workshop trainer`), each in its own working directory with its own environment.

- eight fine-tunes sent at once to both APIs chain eight versions, one training at a time, nothing
  lost, and both APIs list the same jobs in the same order;
- a trainer SIGKILLed mid-epoch: its job ends failed with the reason, no half-written version is
  visible, and the other trainer takes the next job;
- Redis restarted between submission and start: the queued jobs are still there, and run;
- Redis unreachable: the training routes answer 503 naming the queue, with Retry-After, while
  predictions, /models/ and /health/ready keep answering.
Every wait polls for a state; its deadline is only a safety net.
"""

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
from bad_requests import digit_png
from part3_support import API_KEY, ServiceProcess, copy_store, wait_for_job, wait_until
from reliability_support import KEY, TrainerProcess, fine_tune, store_state

from app.part3.settings import Settings
from app.part3.training_queue import TrainingQueue
from app.store import ModelStore, sha256_of

pytestmark = pytest.mark.slow
FINE_TUNES = 8
HEARTBEAT = {"WORKSHOP_HEARTBEAT_INTERVAL": "0.5", "WORKSHOP_HEARTBEAT_TIMEOUT": "8"}


@pytest.fixture(scope="module")
def cluster(seeded_store, redis_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    models_dir = copy_store(seeded_store, root / "shared-store" / "models")
    env = {
        "WORKSHOP_MODELS_DIR": str(models_dir),
        "WORKSHOP_QUEUE_URL": redis_server.url,
        "WORKSHOP_API_KEY": API_KEY,
        "WORKSHOP_MNIST_SOURCE": "bundled",
        **HEARTBEAT,
    }
    apis, trainers = [], []
    try:
        for name in ("api-a", "api-b"):
            (root / name).mkdir()
            apis.append(ServiceProcess(models_dir, env=env, cwd=root / name, log=root / name / "service.log"))
        trainers = [TrainerProcess(root / name, env) for name in ("trainer-a", "trainer-b")]
        for api in apis:
            wait_until(
                lambda api=api: (r := api.answers("/health/ready")) is not None and r.status_code == 200, "ready"
            )
        yield {
            "apis": apis,
            "trainers": trainers,
            "models_dir": models_dir,
            "env": env,
            "root": root,
            "redis": redis_server,
        }
    finally:
        for api in apis:
            api.stop()
        for trainer in trainers:
            trainer.kill()


def listed(api) -> list[dict]:
    return api.get("/jobs/").json()


def test_eight_fine_tunes_on_two_apis_chain_eight_versions_one_at_a_time(cluster):
    apis, store = cluster["apis"], ModelStore("mnist", cluster["models_dir"])
    start = store.active()
    with ThreadPoolExecutor(FINE_TUNES) as pool:
        accepted = list(pool.map(lambda n: fine_tune(apis[n % 2], n), range(FINE_TUNES)))
    finished = [wait_for_job(apis[n % 2].get, job["id"]) for n, job in enumerate(accepted)]
    assert all(job["status"] == "succeeded" for job in finished), finished

    in_order = [job for job in listed(apis[0]) if job["id"] in {j["id"] for j in accepted}]
    assert in_order == [job for job in listed(apis[1]) if job["id"] in {j["id"] for j in accepted}]
    assert [job["sequence"] for job in in_order] == sorted(job["sequence"] for job in in_order)
    # One at a time, in submission order, each fine-tuning the version the previous one published.
    assert [job["parent"] for job in in_order] == [start] + [job["version"] for job in in_order[:-1]]
    assert [job["version"] for job in in_order] == list(range(start + 1, start + FINE_TUNES + 1))
    for before, after in itertools.pairwise(in_order):
        assert before["finished_at"] <= after["started_at"]
    for job in in_order:  # nothing lost: each version names its job and the images it learnt
        metadata = store.get(job["version"]).metadata
        assert (metadata["data"]["job"], metadata["data"]["n_uploaded"]) == (job["id"], job["n_images"])
    print("trainers used:", sorted({job["trainer"] for job in in_order}))
    for api in apis:  # every replica serves the last version
        wait_until(lambda api=api: api.get("/health/ready").json()["models"]["mnist"] == start + FINE_TUNES, "served")


def test_a_trainer_killed_mid_epoch_fails_its_job_and_the_other_takes_the_next(cluster):
    apis, trainers, models_dir = cluster["apis"], cluster["trainers"], cluster["models_dir"]
    store = ModelStore("mnist", models_dir)
    before = store_state(models_dir)
    doomed = fine_tune(apis[0], 0, epochs=30, zip_file=True)
    following = fine_tune(apis[1], 1)
    running = wait_until(
        lambda: (
            (job := apis[0].get(f"/jobs/{doomed['id']}").json())["status"] == "running" and job["epoch"] >= 1 and job
        ),
        "the first job is mid-training",
    )
    victim = next(trainer for trainer in trainers if trainer.pid == running["trainer_pid"])
    victim.kill()

    failed = wait_for_job(apis[1].get, doomed["id"])
    assert failed["status"] == "failed", failed
    assert "heartbeat" in failed["error"] and str(victim.pid) in failed["error"], failed["error"]
    assert store_state(models_dir) == before, "no new, changed or half-written version is visible"
    assert all(sha256_of(v.model_file) == v.metadata["sha256"] for v in store.all_versions())
    taken = wait_for_job(apis[0].get, following["id"])
    assert taken["status"] == "succeeded", taken
    assert taken["trainer_pid"] != victim.pid and taken["parent"] == max(int(v) for v in store.versions()) - 1
    trainers.remove(victim)


def test_queued_jobs_survive_a_redis_restart(cluster):
    apis, trainers = cluster["apis"], cluster["trainers"]
    for trainer in trainers:  # no trainer: the jobs stay queued
        trainer.kill()
    trainers.clear()
    jobs = [fine_tune(apis[n % 2], n) for n in range(2)]
    assert [job["status"] for job in jobs] == ["queued", "queued"]
    turns = TrainingQueue(Settings(**{"models_dir": cluster["models_dir"], "queue_url": cluster["redis"].url})).huey
    assert turns.pending_count() >= 2

    cluster["redis"].restart()
    ids = [job["id"] for job in jobs]
    for api in apis:
        assert [job["id"] for job in listed(api) if job["id"] in ids] == ids
        assert all(job["status"] == "queued" for job in listed(api) if job["id"] in ids)
    assert turns.pending_count() >= 2, "the queue's tasks are kept too"
    trainers.append(TrainerProcess(cluster["root"] / "trainer-c", cluster["env"]))
    done = [wait_for_job(apis[0].get, job_id) for job_id in ids]
    assert [job["status"] for job in done] == ["succeeded", "succeeded"], done


def test_redis_unreachable_training_routes_answer_503_and_serving_goes_on(cluster):
    apis, redis_server = cluster["apis"], cluster["redis"]
    redis_server.stop()
    try:
        for api in apis:
            for method, path in (("POST", "/train/"), ("POST", "/retrain/"), ("GET", "/jobs/")):
                files = {"files": ("img1_1.png", digit_png(1), "image/png")} if path == "/train/" else None
                response = api.client.request(method, path, files=files, headers=KEY)
                assert response.status_code == 503, (path, response.text)
                assert int(response.headers["retry-after"]) > 0
                assert f"training queue at redis://127.0.0.1:{redis_server.port}" in response.json()["detail"]
            assert api.client.post("/predict/", files={"file": ("x.png", digit_png(2), "image/png")}).status_code == 200
            assert api.get("/predict/", params={"bill": "40.3", "flipper": "195"}).status_code == 200
            assert api.get("/models/").status_code == 200
            assert api.get("/health/ready").status_code == 200
            assert api.get("/metrics").status_code == 200
    finally:
        redis_server.start()
    assert apis[0].get("/jobs/").status_code == 200
