# syntax=docker/dockerfile:1
# The images of the Part 3 service (app/part3), one target each:
#
#   standalone (default)  the API and its trainer in one container, embedded queue (SQLite in the volume):
#       docker build -t fastapi-ml-workshop .
#       docker run -d --name workshop -p 80:80 -v workshop-models:/code/models \
#           -e WORKSHOP_API_KEY=change-me fastapi-ml-workshop
#   serve                 the API only, without the training libraries; needs WORKSHOP_QUEUE_URL=redis://...
#   train                 a trainer (`python -m app.part3.trainer_worker`), with TensorFlow and scikit-learn
#
# `docker compose up -d` (compose.yaml) runs Redis, two `serve` replicas and one `train`. The first
# start on an empty volume trains the initial models from the bundled data before /health/ready
# turns 200; later starts load the saved versions. tests/container/ lints this file with hadolint
# and replays the default target step by step without Docker.
#
# Every target copies the runtime only: app/ (the services and the trainer) and data/ (what the first
# training reads). The workshop's tooling (workshop/), bench/, tests/ and notebooks/ stay out.
FROM python:3.12-slim AS base

# uv, pinned to the version that wrote uv.lock, copied from its official image (no curl | sh).
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/

# Compile byte-code once at build time (the service starts faster), copy out of the cache mount
# (another filesystem), and never download a Python: the image's own 3.12 is the one to use.
ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=0

# An unprivileged user for the service. It owns the models folder and nothing else: the code and the
# environment stay root's, so the service cannot rewrite itself. A named volume mounted on
# /code/models starts as a copy of this folder, owner included.
RUN groupadd --system --gid 10001 workshop \
    && useradd --system --uid 10001 --gid workshop --create-home workshop \
    && mkdir -p /code/models \
    && chown workshop:workshop /code/models

WORKDIR /code

# The dependencies first, from the lock alone: their layer is rebuilt when uv.lock changes, not when
# the code does. --locked refuses a lock that no longer matches pyproject.toml.
COPY pyproject.toml uv.lock ./

ENV PATH="/code/.venv/bin:$PATH" \
    WORKSHOP_MODELS_DIR=/code/models \
    WORKSHOP_DATA_DIR=/code/data \
    WORKSHOP_MNIST_SOURCE=bundled

# Trained versions, the embedded queue and the jobs' uploads live here, outside the container's
# writable layer, so they survive a new container and are shared by several replicas.
VOLUME ["/code/models"]

# -- serve: the API; --no-default-groups installs [project] dependencies only (no Jupyter, pytest or
# training libraries). Set WORKSHOP_QUEUE_URL: this image starts no trainer.
FROM base AS serve
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --no-install-project
COPY README.md ./
COPY app ./app
COPY data ./data
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups
# By number, not name: Kubernetes' runAsNonRoot can only verify a numeric user.
USER 10001:10001
EXPOSE 80
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:80/health/ready', timeout=4)"]
CMD ["fastapi", "run", "app/part3/main.py", "--port", "80"]

# -- train: a trainer, with the `train` dependency group (TensorFlow, scikit-learn).
FROM base AS train
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --group train --no-install-project
COPY README.md ./
COPY app ./app
COPY data ./data
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-default-groups --group train
ENV KERAS_BACKEND=tensorflow \
    TF_CPP_MIN_LOG_LEVEL=2
USER 10001:10001
# The trainer module itself: the `workshop` command (workshop/cli.py) is tooling, not in the image.
CMD ["python", "-m", "app.part3.trainer_worker"]

# -- standalone (the default): the train image running the API, which starts its own trainer
# (WORKSHOP_QUEUE_URL unset: the queue is SQLite in the models volume).
FROM train AS standalone

# Docker Engine (20.10 and later) lets an unprivileged process bind port 80 inside its own network
# namespace; where that is not so (e.g. --network host), run the service on a port above 1023.
EXPOSE 80

# Ready means both models are loaded and warmed. Python's own urllib: the slim image has no curl.
# The start period covers the first start's training on an empty volume.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10m --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:80/health/ready', timeout=4)"]

# Exec form: fastapi is PID 1 and receives `docker stop`'s SIGTERM itself (no shell in between).
CMD ["fastapi", "run", "app/part3/main.py", "--port", "80"]
