# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Part 3: the service in production
#
# The last part gets the service ready to leave your laptop. It goes into a **container image**, the
# package a cloud service or a server runs, and its models go on a **volume**, so that they outlive any
# one container. Then we run this project's production service, which grew out of Part 2: both models in
# one service, trainings queued as jobs and run by a trainer process of their own, and new versions that
# replace the served one while predictions go on.
#
# There is no Docker engine on the machines this workshop is tested on, so this notebook does not build
# images. It explains each command to run where Docker is installed, and reads your `Dockerfile` and
# `compose.yaml` the way Docker would (`workshop/dockerfile.py`), which is also what
# `uv run workshop check part3/...` does. The production service itself runs here, with `uv`, in the
# background, as the apps of Parts 1 and 2 did.

# %% tags=["parameters"]
side = None  # whose files the cells read: None reads WORKSHOP_SIDE, else "exercises" (yours); "solutions" too
epochs = 2  # epochs of the production service's first trainings (its default is the workshop's 15)
fine_tune_epochs = 3  # epochs of the fine-tune whose progress and hot swap we watch

# %%
import tempfile
from pathlib import Path, PurePosixPath

import pandas as pd
import yaml

pd.set_option("display.max_colwidth", None)  # a Dockerfile's instructions in full

from app.paths import DATA_DIR, PROJECT_ROOT, setting
from workshop.dockerfile import Dockerfile, DockerIgnore
from workshop.notebook import check, claim, require_written, show, start_file, use_side
from workshop.notebook_pictures import Recorder, live_figure, plot_progress, versions_figure

print(f"The cells below read and check the files in {use_side(side)}/.")
epochs = int(setting("EPOCHS", epochs) or epochs)  # WORKSHOP_EPOCHS, when set, wins (the test suite's 1)
if setting("QUICK_NOTEBOOKS") == "1":  # the test suite's quick run
    fine_tune_epochs = 2


def as_docker_reads_it(dockerfile: Dockerfile) -> pd.DataFrame:
    """One row per instruction: continuation lines joined and comments dropped, as Docker sees the file."""
    rows = [(i.line, i.keyword, i.arguments) for i in dockerfile.instructions]
    return pd.DataFrame(rows, columns=["line", "instruction", "arguments"]).set_index("line")


# %% [markdown]
# ## Why containers?
#
# A service that works on your machine depends on a great deal you never wrote down: the Python version,
# every library and its version, the system libraries under them, the files it reads. A **container image**
# bundles all of it, built from a recipe, the `Dockerfile`; a **container** is one running instance of an
# image, isolated from the machine and from other containers. The same image runs the same way on your
# laptop, on a colleague's, and on any cloud that runs containers. Official base images, such as
# [`python:3.12`](https://hub.docker.com/_/python) on Docker Hub, give you a system with Python installed
# to start from.
#
# ## Exercise 1: an image, and a container from it
#
# A `Dockerfile` is a list of instructions, run in order at build time; each makes a **layer** of the image:
#
# - `FROM python:3.12`: the base image every other layer is built on;
# - `WORKDIR /code`: the folder the next instructions, and the container's command, work in;
# - `COPY <here> <in the image>`: files from the **build context** (the folder given to `docker build`)
#   into the image;
# - `RUN <command>`: a command run *while building*, such as installing the requirements with pip;
# - `CMD [...]`: the command a container runs *when it starts*, here the service.
#
# `RUN` and `CMD` are easy to confuse: `RUN` changes the image once, at build time; `CMD` is what every
# container started from it will do. Docker keeps each layer and rebuilds only from the first instruction
# whose input changed: copying `requirements.txt` and installing it *before* copying the code means an edit
# to your code does not reinstall every library.
#
# Open **`exercises/part3/Dockerfile`**. It starts from `python:3.12` in `/code`; write the rest: copy
# `requirements.txt` and install it with `pip install --no-cache-dir --upgrade -r`, copy `app/` (the code
# your service imports), `data/`, and your last Part 2 app, `exercises/part2/challenge_startup.py`, each to
# the path it has in your checkout (`/code/app`, `/code/data`, `/code/exercises/part2/challenge_startup.py`:
# exercise 2 lays your checkout over `/code`, and the same paths keep working then). `fastapi run` puts only
# the served file's folder on Python's path, so add `ENV PYTHONPATH=/code` for `import app` to work, and end
# with `CMD ["fastapi", "run", "exercises/part2/challenge_startup.py", "--port", "80"]`.
#
# Here is your file as Docker reads it:

# %%
with claim("the Dockerfile reads as Docker would read it"):
    dockerfile = Dockerfile.read(require_written("part3/ex1_image"))
    show(as_docker_reads_it(dockerfile))

# %% [markdown]
# And what each `COPY` puts where in the image. Docker only sends the builder the files that
# `.dockerignore` lets through (this project lists what may go in, and nothing else), so a local `models/`,
# `.venv` or `.git` never reach an image:

# %%
with claim("the image gets requirements.txt, app/, data/ and your Part 2 app, each at its checkout's path"):
    dockerfile = Dockerfile.read(require_written("part3/ex1_image"))
    ignore = DockerIgnore.read(PROJECT_ROOT)
    landed = [
        (source, str(target), len(ignore.files(PROJECT_ROOT, source)) if (PROJECT_ROOT / source).is_dir() else 1)
        for source, target in dockerfile.landings(PROJECT_ROOT)
    ]
    show(pd.DataFrame(landed, columns=["from the build context", "to the image", "files"]))
    targets = {target for _, target, _ in landed}
    served = "/code/exercises/part2/challenge_startup.py"
    assert {"/code/requirements.txt", "/code/app", "/code/data", served} <= targets, targets

# %%
with claim("the requirements are installed before the code is copied, and the service runs on port 80"):
    dockerfile = Dockerfile.read(require_written("part3/ex1_image"))
    install = next(run for run in dockerfile.all("RUN") if "pip" in run.words())
    code = next(copy for *_, copy in dockerfile.copies() if "challenge_startup.py" in copy.arguments)
    assert dockerfile.index(install) < dockerfile.index(code), "copy the code after installing, for the cache"
    command = dockerfile.last("CMD").exec_form
    assert command[:2] == ["fastapi", "run"] and command[-2:] == ["--port", "80"], command

# %% [markdown]
# Where Docker runs, from the project's folder (the build context `.` holds `app/`, `data/` and
# `requirements.txt`):
#
# ```bash
# docker build -f exercises/part3/Dockerfile -t mnist_fastapi .   # build the image, named mnist_fastapi
# docker run -d --name fastapi_app -p 80:80 mnist_fastapi         # start a container from it
# ```
#
# `-d` (detached) runs the container in the background and gives you your terminal back; `--name` names it;
# `-p 80:80` publishes the container's port 80 on port 80 of your machine, so http://127.0.0.1/ reaches the
# service. `docker logs -f fastapi_app` shows its console (the first training, then uvicorn's lines), and
# `docker rm -f fastapi_app` stops and removes it.

# %%
check("part3/ex1_image")

# %% [markdown]
# ## Exercise 2: a volume for the models
#
# A container writes into a thin layer of its own on top of the image. When the container is removed, that
# layer goes with it: every model the service trained and saved in `/code/models` is lost, and the next
# container trains from nothing again. A **volume** is storage that Docker keeps apart from any container and
# mounts into one: what the service saves there outlives the container.
#
# **Why a volume?** Let us watch it happen, with this project's production service standing in for the
# container (the same idea: at start-up it serves the saved models, and trains only when there are none). Its
# model folder is the "volume". First start: an empty folder, so it trains its first models before it is
# ready.

# %%
volume = Path(tempfile.mkdtemp(prefix="part3-volume-"))
service_settings = {
    "WORKSHOP_MODELS_DIR": str(volume),
    "WORKSHOP_EPOCHS": str(epochs),
    "WORKSHOP_MNIST_SOURCE": "bundled",
    "WORKSHOP_POLL_INTERVAL": "0.2",  # how often each worker looks for a new version (default: 1 s)
    # Short trainings make weak models; the promotion gate (notebooks/monitoring.ipynb) would rightly refuse
    # some of them. Here every version may serve, so that each step shows what it is about.
    "WORKSHOP_GATE_FLOOR__MNIST": "0",
    "WORKSHOP_GATE_FLOOR__PENGUINS": "0",
    "WORKSHOP_GATE_MARGIN__MNIST": "1",
}
seven = ("test_img7.png", (DATA_DIR / "test_image" / "test_img7.png").read_bytes(), "image/png")
service = start_file("app/part3/main.py", name="the production service", env=service_settings)
service.follow(lambda: service.get("/health/ready").status_code == 200, "both models are trained and loaded")
first = service.get("/info/")
first

# %% [markdown]
# A second container **with the volume** (the same folder): it finds the saved versions and is ready at once,
# serving the same version. A second container **without it** (a new, empty folder): nothing to serve, and
# `/health/ready` says so until it has trained again.

# %%
service.stop()
with_volume = start_file("app/part3/main.py", name="the production service", env=service_settings)
with_volume.follow(lambda: with_volume.get("/health/ready").status_code == 200, "both models are loaded")
show(with_volume.get("/info/"))

empty = {**service_settings, "WORKSHOP_MODELS_DIR": tempfile.mkdtemp(prefix="part3-no-volume-")}
without_volume = start_file("app/part3/main.py", name="a container without the volume", env=empty)
show(without_volume.get("/health/ready"), without_volume.post("/predict/", files={"file": seven}))

# %%
with claim("with the volume the new service serves the saved versions at once; without it, nothing until it trains"):
    assert with_volume.get("/info/").json() == first.json(), "the same versions serve"
    assert without_volume.get("/health/ready").status_code == 503
    assert without_volume.post("/predict/", files={"file": seven}).status_code == 503
without_volume.stop()

# %% [markdown]
# The workshop keeps the models with a bind mount of the whole project folder:
# `docker run ... -v $(pwd):/code mnist_fastapi`. Your checkout is laid over `/code`, the folder the image put
# its code in, and the service saves its models in `/code/models`, that is in your checkout's `models/`:
# they outlive the container. Run it that way:
#
# ```bash
# docker rm -f fastapi_app
# docker run -d --name fastapi_app -p 80:80 -v $(pwd):/code mnist_fastapi
# ```
#
# The price: under the mount the container no longer runs what the image holds, but whatever your folder
# holds at those paths. That is why exercise 1 copied each file to the path it has in your checkout: here is
# what the mount does to each of them.

# %%
with claim("under -v $(pwd):/code, every file the image put in /code is replaced by your checkout's own"):
    dockerfile = Dockerfile.read(require_written("part3/ex1_image"))
    hidden = [
        (str(target), "replaced by your folder's" if (PROJECT_ROOT / target.relative_to("/code")).exists() else "gone")
        for _, target in dockerfile.landings(PROJECT_ROOT)
        if target.is_relative_to(PurePosixPath("/code"))
    ]
    show(pd.DataFrame(hidden, columns=["in the image", "under -v $(pwd):/code"]))
    assert all(fate == "replaced by your folder's" for _, fate in hidden), hidden

# %% [markdown]
# Had the image copied your app to `/code/main.py` (a path your checkout does not have), the mount would hide
# it and the container would not start. Going further, this project mounts a volume on the models folder
# only, so that the container runs exactly the image you built: declare it in the Dockerfile, so that Docker
# gives every container a volume there even when `docker run` names none (`VOLUME /code/models`), and name
# it when you run, so that the next container gets the same one:
#
# ```bash
# docker rm -f fastapi_app
# docker run -d --name fastapi_app -p 80:80 -v mnist_models:/code/models mnist_fastapi
# ```
#
# `-v mnist_models:/code/models` mounts the volume named `mnist_models` (Docker creates it the first time) on
# `/code/models`. Add the `VOLUME` line to **`exercises/part3/Dockerfile`** (the check shows it as "going
# further"):

# %%
with claim("the Dockerfile declares the models folder, and only it, as a volume"):
    dockerfile = Dockerfile.read(require_written("part3/ex2_volume"))
    volumes = [str(dockerfile.workdir() / path) for path in dockerfile.volumes()]
    show(volumes)
    assert volumes == ["/code/models"], volumes

# %%
check("part3/ex2_volume")

# %% [markdown]
# ## Extra challenge: Docker Compose
#
# `docker run` with its options is easy to get wrong, and a real deployment has several containers (this
# project's has a Redis, two API replicas and a trainer: `compose.yaml` at the root). **Docker Compose**
# describes containers, their ports and their volumes in a YAML file, and starts or stops them all with one
# command:
#
# ```bash
# docker compose -f exercises/part3/compose.yaml up -d   # create the volume if needed, start the container
# docker compose -f exercises/part3/compose.yaml down    # stop and remove it; the named volume stays
# ```
#
# Open **`exercises/part3/compose.yaml`**: publish port 80 (`ports:`, as `-p 80:80`), mount a named volume
# `models` on `/code/models` (`volumes:`, as `-v`), and declare that volume at the top level, so Compose
# creates it once and keeps it across `down` and `up`.

# %%
with claim("compose.yaml publishes port 80 and mounts the named volume `models` on /code/models"):
    compose = yaml.safe_load(require_written("part3/challenge_compose").read_text())
    service_spec = next(iter(compose["services"].values()))
    show(pd.DataFrame([{"service": name, **spec} for name, spec in compose["services"].items()]).set_index("service"))
    assert "80:80" in [str(port) for port in service_spec.get("ports", [])], service_spec
    assert "models:/code/models" in service_spec.get("volumes", []), service_spec
    assert "models" in (compose.get("volumes") or {}), "declare `models` under a top-level `volumes:`"

# %%
check("part3/challenge_compose")

# %% [markdown]
# ## The production service
#
# `app/part3/main.py` is where the workshop's service ends up in this project: both models behind the
# workshop's routes, and the lessons of Part 2 taken to several processes.
#
# - **The store is the only shared state.** Each version is published whole (a temporary folder, then a
#   rename), with a file made for serving (`model.onnx`); every worker keeps its models in memory and swaps
#   in a new version when the store serves one.
# - **Trainings are jobs.** `POST /train/` checks the upload, queues a job and answers `202` with its id at
#   once. A trainer process, started by the service, runs the jobs one at a time: the lock of exercise 4,
#   across every process. `GET /jobs/{id}` follows a job: queued, running (epoch by epoch), succeeded (the
#   new version) or failed (why).
# - **Ready means ready.** `/health/live` answers as soon as the process runs; `/health/ready` answers 200
#   only once both models are loaded, which is what an orchestrator (Compose's healthcheck, Kubernetes) waits
#   for before sending traffic.
#
# The service started above, on the "volume", is still running. Let us fine-tune it on the images of
# `data/train_img.zip` (one upload, the zip itself) and, while the job trains, send it a prediction every
# twentieth of a second, noting which version answers each one. The picture grows while the job runs: the
# orange band is the job training, and below it its epochs as `GET /jobs/{id}` reports them.

# %% tags=["figure"]
service = with_volume
with claim("predictions are answered throughout the fine-tune, and the new version takes over once it is published"):
    answers = Recorder(lambda: service.post("/predict/", files={"file": seven}).json()["version"], every=0.05)
    before = answers.wait(lambda version: True, "a first answer")
    upload = ("train_img.zip", (DATA_DIR / "train_img.zip").read_bytes(), "application/zip")
    accepted = service.post("/train/", files={"files": upload}, data={"epochs": str(fine_tune_epochs)})
    show(accepted)
    answers.mark("POST /train/")
    jobs = Recorder(lambda: service.get(accepted.json()["url"]).json(), every=0.2)

    def the_swap_is_seen():
        """The finished job, once twenty predictions have come from the version it published."""
        job = jobs.latest(lambda job: job["status"] in ("succeeded", "failed"))
        if job is None or job["status"] == "failed":
            return job
        if not any(what.startswith("version") for _, what in answers.timeline.marks):
            answers.mark(f"version {job['version']} published")
        return job if sum(version == job["version"] for _, version in answers.timeline.samples) >= 20 else None

    title = "The version that answered each prediction, while a fine-tune ran"
    job = live_figure(lambda: versions_figure(answers.timeline, jobs.timeline, title), the_swap_is_seen)
    progress, timeline = jobs.stop(), answers.stop()
    plot_progress(progress, f"The fine-tune's progress, as GET {accepted.json()['url']} reported it")
    show({key: job[key] for key in ("status", "epochs", "parent", "version", "promoted", "gate_reason")})
    assert job["status"] == "succeeded" and job["parent"] == before, job
    versions = [version for _, version in timeline.samples]
    swap = versions.index(job["version"])
    assert set(versions[:swap]) == {before} and set(versions[swap:]) == {job["version"]}, "one swap, no return"

# %% [markdown]
# Not one prediction waited for the training: the API process never trains (the trainer process does), and
# it swapped the new version in between two requests, within `WORKSHOP_POLL_INTERVAL` of its publication.
# Every answer came from a whole version, the old one or the new one.
#
# Open the service's own pages while it runs: `/docs` lists every route; `/upload/` uploads images or a zip
# and follows the job live; `/models/` lists the versions with the promotion gate's decisions; `/metrics` is
# for Prometheus.

# %%
with claim("/models/ lists each digit version with the promotion gate's decision and its parent"):
    listing = service.get("/models/").json()["mnist"]
    show(service.docs, pd.DataFrame(listing["versions"], dtype=object).set_index("version")[["status", "parent"]])
    assert [version["parent"] for version in listing["versions"]][-1] == listing["versions"][-2]["version"]

# %%
service.stop()

# %% [markdown]
# ## Putting it in a container
#
# The project's own `Dockerfile`, at the root, builds this service in three flavours (its *targets*):
# `serve` (the API alone, without the training libraries), `train` (a trainer), and `standalone`, the default,
# which serves and trains in one container. Each installs its dependencies from `uv.lock` in a layer of its
# own, runs as a user without root's rights, and reports healthy once `/health/ready` answers:
#
# ```bash
# docker build -t mnist_fastapi .
# docker run -d --name fastapi_app -p 80:80 -v models:/code/models mnist_fastapi
# WORKSHOP_API_KEY=change-me docker compose up -d     # Redis, two API replicas, one trainer
# ```
#
# From there, a cloud provider's container service, or any server with Docker, runs the same image, and
# infrastructure-as-code tools such as OpenTofu or Terraform describe those servers in files, as Compose
# describes the containers. The workshop stops here, and so does this notebook; `notebooks/monitoring.ipynb`
# goes on with a service in use: when its model should be trained again, and whether a new version may serve.

# %%
with claim("the project's image runs as a user without root's rights and checks /health/ready"):
    production = Dockerfile.read(PROJECT_ROOT / "Dockerfile").target()
    show(as_docker_reads_it(production))
    assert production.user() not in (None, "root", "0"), production.user()
    assert any("/health/ready" in word for word in production.healthcheck_command() or []), "a health check"
