"""The model store's own costs, a local folder against S3 (moto's server as a process on loopback), for
the MNIST model's two files (model.keras, model.onnx of the workshop's CNN):

    uv run python -m bench.store_backends          # prints a Markdown table; medians of 20 turns

publish: a version's files copied in and made visible (a rename; uploads and a conditional manifest).
first load: a worker with an empty cache reads the serving file, sha256 checked (the bucket downloads it).
load again: the same from the worker's cache. active(): what a worker's refresher pays at every poll.
moto answers slower than MinIO or S3 would on a LAN (a Python server): the ratios are an upper bound.
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from app.modelkit import SERVING_FILE
from app.models import mnist
from app.onnx_export import write_serving_file
from app.store import ModelStore

TURNS = 20


def model_files(folder: Path) -> Path:
    """The CNN's .keras and .onnx files, as a training publishes them (one quick epoch on noise)."""
    import numpy as np

    model = mnist.build_model(seed=0)
    rng = np.random.default_rng(0)
    model.fit(
        rng.random((64, 28, 28, 1), dtype=np.float32), np.eye(10, dtype=np.float32)[np.arange(64) % 10], verbose=0
    )
    write_serving_file(mnist.MODEL, model, folder)
    mnist.save(model, folder)
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("moto's server did not start")


def median_ms(action: Callable[[int], object]) -> float:
    times = []
    for turn in range(TURNS):
        start = time.perf_counter()
        action(turn)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(root: Path | str, work: Path, files: Path, kind: str) -> dict[str, float]:
    def save(folder: Path) -> str:
        for name in (mnist.MODEL_FILE, SERVING_FILE):
            shutil.copyfile(files / name, folder / name)
        return mnist.MODEL_FILE

    def read(path: Path) -> bytes:
        return path.read_bytes()

    store = ModelStore("mnist", root, cache=work / f"{kind}-publisher")
    store.publish(save, {}, serving_file=SERVING_FILE)  # the first call also makes the client
    figures = {"publish": median_ms(lambda turn: store.publish(save, {}, serving_file=SERVING_FILE))}
    number = store.publish(save, {}, serving_file=SERVING_FILE).number
    figures["first load (empty cache)"] = median_ms(
        lambda turn: ModelStore("mnist", root, cache=work / f"{kind}-worker-{turn}").load_serving(number, read)
    )
    worker = ModelStore("mnist", root, cache=work / f"{kind}-worker")
    worker.load_serving(number, read)
    figures["load again (cached)"] = median_ms(lambda turn: worker.load_serving(number, read))
    figures[f"active() with {len(worker.versions())} versions"] = median_ms(lambda turn: worker.active())
    return figures


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="store-bench-"))
    port = free_port()
    server = start_moto(port)
    try:
        os.environ.update(
            AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
        )
        import boto3

        boto3.session.Session().client("s3").create_bucket(Bucket="bench")
        files = model_files(work / "files")
        sizes = ", ".join(f"{path.name} {path.stat().st_size / 1024:.0f} KiB" for path in sorted(files.iterdir()))
        folder = measure(work / "models", work, files, "folder")
        bucket = measure("s3://bench/models", work, files, "bucket")
    finally:
        server.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"MNIST files: {sizes}; medians of {TURNS} turns\n")
    print("| step | local folder | S3 (moto) | ratio |\n|---|---|---|---|")
    for step in folder:
        print(f"| {step} | {folder[step]:.2f} ms | {bucket[step]:.2f} ms | {bucket[step] / folder[step]:.0f} x |")


if __name__ == "__main__":
    main()
