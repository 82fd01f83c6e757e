"""Workers serve model.onnx with ONNX Runtime only: no training library in a running worker through
start-up, predictions, a hot swap and a rollback; and stores made before serving files keep working
(the trainer side exports the missing files, never a worker) (slow: real processes)."""

import json
import os
import subprocess
import sys

import httpx
import pytest
from part3_support import API_KEY, copy_store, digit_file, free_port, running_service, wait_for_job, wait_until

from app import promotion
from app.datasets import load_penguins
from app.modelkit import Trained
from app.models import penguins
from app.paths import PROJECT_ROOT
from app.store import METADATA_FILE, ModelStore

pytestmark = pytest.mark.slow
TRAINING_LIBRARIES = ("tensorflow", "keras", "sklearn", "skops")

# A worker under uvicorn in a thread; on a line on stdin it prints which training libraries it imported.
WORKER = f"""
import json, sys, threading, uvicorn
from app.part3.main import app
server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning"))
thread = threading.Thread(target=server.run)
thread.start()
sys.stdin.readline()
print(json.dumps(sorted(name for name in {TRAINING_LIBRARIES!r} if name in sys.modules)), flush=True)
server.should_exit = True
thread.join()
"""


def test_a_running_worker_never_imports_a_training_library(seeded_store, tmp_path):
    folder = copy_store(seeded_store, tmp_path / "models")
    port = free_port()
    env = {
        **os.environ,
        "WORKSHOP_MODELS_DIR": str(folder),
        "WORKSHOP_API_KEY": API_KEY,
        "WORKSHOP_POLL_INTERVAL": "0.2",
    }
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)

        def served():
            try:
                response = client.get("/health/ready")
            except httpx.TransportError:
                assert worker.poll() is None, "the worker exited"
                return None
            return response.json()["models"] if response.status_code == 200 else None

        assert wait_until(served, "the worker is ready") == {"penguins": 1, "mnist": 1}
        assert client.get("/predict/", params={"bill": 40.3, "flipper": 195}).json()["result"] == "Adelie"
        assert client.post("/predict/", files={"file": digit_file(7)}).status_code == 200
        batch = client.post("/predict/batch/", files=[("files", digit_file(d)) for d in (1, 2, 3)])
        assert batch.status_code == 200 and len(batch.json()["results"]) == 3
        # Hot swap: a version published by another process (this one, with scikit-learn).
        frame = load_penguins()
        promotion.publish(
            penguins.MODEL, Trained(penguins.train(frame, n_neighbors=5)), store=ModelStore("penguins", folder)
        )
        wait_until(lambda: (served() or {}).get("penguins") == 2, "the worker serves penguins 2")
        assert client.get("/predict/", params={"bill": 40.3, "flipper": 195}).json()["version"] == 2
        # Rollback.
        activated = client.post("/models/penguins/1/activate", headers={"X-API-Key": API_KEY})
        assert activated.status_code == 200, activated.text
        wait_until(lambda: (served() or {}).get("penguins") == 1, "the worker serves penguins 1 again")
        assert client.get("/predict/", params={"bill": 40.3, "flipper": 195}).json()["version"] == 1
        imported, _ = worker.communicate("report\n", timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert json.loads(imported.strip().splitlines()[-1]) == []


def make_old(store: ModelStore, number: int) -> None:
    """What a version published before serving files looks like: no model.onnx, no serving keys."""
    version = store.get(number)
    version.serving_file.unlink()
    metadata = {key: value for key, value in version.metadata.items() if not key.startswith("serving")}
    (version.path / METADATA_FILE).write_text(json.dumps(metadata))


def test_an_old_store_is_served_after_the_first_start_job_exports_its_serving_files(seeded_store, tmp_path):
    folder = copy_store(seeded_store, tmp_path / "models")
    stores = {name: ModelStore(name, folder) for name in ("penguins", "mnist")}
    promotion.publish(penguins.MODEL, Trained(penguins.train(load_penguins(), n_neighbors=5)), store=stores["penguins"])
    make_old(stores["penguins"], 2)
    make_old(stores["mnist"], 1)
    with running_service(folder, wait_ready=False) as client:
        # Meanwhile: penguins 1 serves (the newest with a serving file); mnist has none, and says so.
        waiting = wait_until(lambda: client.get("/health/ready").json()["models"]["penguins"], "penguins 1 serves")
        assert waiting == 1
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert "mnist version 1 has no model.onnx yet" in ready.json()["detail"]
        assert "penguins version 2 has no model.onnx yet" in ready.json()["detail"]
        jobs = wait_until(lambda: client.get("/jobs/").json(), "the first-start job is queued")
        assert [job["kind"] for job in jobs] == ["initial"]
        assert wait_for_job(client.get, jobs[0]["id"])["status"] == "succeeded"
        wait_until(lambda: client.get("/health/ready").status_code == 200, "ready")
        wait_until(lambda: client.get("/health/ready").json()["models"] == {"penguins": 2, "mnist": 1}, "both swap")
        assert client.get("/health/ready").json()["detail"] is None
        assert client.post("/predict/", files={"file": digit_file(4)}).json()["version"] == 1
    assert stores["mnist"].versions() == [1]  # exported, not retrained
    for store in stores.values():
        assert store.servable() == store.versions()


def test_the_export_command_gives_every_old_version_its_serving_file(seeded_store, tmp_path):
    folder = copy_store(seeded_store, tmp_path / "models")
    stores = [ModelStore(name, folder) for name in ("penguins", "mnist")]
    for store in stores:
        make_old(store, 1)
        assert store.servable() == []
    done = subprocess.run(
        [sys.executable, "-m", "app.part3.training_job", "--export-missing"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "WORKSHOP_MODELS_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for store in stores:
        assert store.servable() == [1]
        assert store.load_serving(1, lambda path: path.name) == "model.onnx"  # sha256 checked
