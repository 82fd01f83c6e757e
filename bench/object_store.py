"""An S3-compatible store on loopback for the benchmark's section 14: moto's server as a process of its
own (bench/store_backends.py starts it), a bucket, and the environment a Part 3 process needs to keep
its models there (WORKSHOP_MODELS_URL and the usual AWS_* variables). moto is a Python server: slower
than MinIO or S3 on a LAN, so the ratios it gives are an upper bound."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.storage.copy_store import copy_model
from app.store import ModelStore
from bench.servers import free_port
from bench.store_backends import start_moto

BUCKET = "bench-models"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def object_store(source: Path, models: list[str]) -> Iterator[dict[str, str]]:
    """moto's S3 on a free loopback port holding a copy of the folder store `source`; yields the
    environment that points a Part 3 process at it. The server stops at the end."""
    port = free_port()
    server = start_moto(port)
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "WORKSHOP_MODELS_URL": f"s3://{BUCKET}/team"}
    saved = {name: os.environ.get(name) for name in env}
    try:
        os.environ.update(env)  # this process's boto3 client, for the copy
        import boto3

        boto3.session.Session().client("s3").create_bucket(Bucket=BUCKET)
        for name in models:
            copy_model(
                ModelStore(name, source),
                ModelStore(name, env["WORKSHOP_MODELS_URL"], cache=source.parent / "copy-cache"),
            )
        yield env
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        server.kill()
        server.wait()
