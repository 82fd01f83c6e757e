"""Checks for part3/ex2_volume: the trained models outlive the container.

The workshop's step is a `docker run` option: `-v $(pwd):/code` mounts your checkout on /code, so what
the service saves in /code/models lands in your checkout's models/. For that the image must work in
/code, save its models there, and serve its app by the path the app has in your checkout: the mount
replaces the image's /code with the checkout, where your app is exercises/part2/challenge_startup.py,
not main.py. That is what the step checks. Going further: that mount puts your checkout over the
whole /code, so the container no longer runs what the image holds; a volume on the models folder
only, declared with VOLUME, keeps the models and hides nothing; and models never belong in the image.
"""

from pathlib import PurePosixPath

import pytest

from app.paths import PROJECT_ROOT
from tests.exercises.part3.image_layout import models_dir, served_file
from workshop.dockerfile import DockerIgnore

HINTS = [
    "The workshop's step is how you run the image: `docker run -d --name fastapi_app -p 80:80 -v $(pwd):/code "
    "mnist_fastapi`. For that mount to work, WORKDIR /code, the models saved under it, and the app served by "
    "the path it has in your checkout.",
    "Copy your app to the same path in the image (COPY ./exercises/part2/challenge_startup.py "
    "/code/exercises/part2/challenge_startup.py), serve that path in the CMD, and add `ENV PYTHONPATH=/code` "
    "so that it imports app/ from /code.",
    "Going further: `VOLUME /code/models` declares the one folder that must outlive the container; run "
    "with `-v mnist_models:/code/models` and the image's code stays the image's.",
    "Going further: leave ./models out of the image (.dockerignore), or copy less than the whole folder.",
]

CODE = PurePosixPath("/code")  # where the workshop's `-v $(pwd):/code` mounts the checkout


def test_the_service_runs_in_code(dockerfile):
    assert dockerfile.workdir() == CODE, (
        f"the workshop's `docker run -v $(pwd):/code` mounts your checkout on /code, and the image works in "
        f"{dockerfile.workdir()}: make it WORKDIR /code"
    )


def test_the_models_are_saved_where_the_mount_keeps_them(dockerfile):
    models = models_dir(dockerfile)
    assert models.is_relative_to(CODE), (
        f"the service saves its models in {models}, outside /code: with `-v $(pwd):/code` only /code is your "
        "checkout, so they would be lost with the container"
    )


def test_the_mounted_checkout_holds_the_app_the_container_serves(dockerfile):
    """With the mount, /code is your checkout: the CMD's file must be there, by the same path."""
    served = served_file(dockerfile)
    assert served.is_relative_to(CODE), f"the CMD serves {served}, outside /code: serve it from /code"
    in_checkout = served.relative_to(CODE)
    assert (PROJECT_ROOT / in_checkout).is_file(), (
        f"with `-v $(pwd):/code` your checkout replaces the image's /code, and it has no {in_checkout}: serve your app "
        "by the path it has in your checkout: COPY ./exercises/part2/challenge_startup.py "
        "/code/exercises/part2/challenge_startup.py, run that path, and ENV PYTHONPATH=/code so that it finds app/"
    )


@pytest.mark.going_further(
    "`-v $(pwd):/code` puts your checkout over the image's whole /code: the container runs the checkout's files, "
    "not the image's, so what runs is no longer what you built (and the checkout's files belong to root)",
    hint="declare `VOLUME /code/models` and run with `-v mnist_models:/code/models`: a volume for the models only",
)
def test_declares_the_models_folder_as_a_volume(dockerfile):
    models = models_dir(dockerfile)
    volumes = [dockerfile.workdir() / path for path in dockerfile.volumes()]
    declared = ", ".join(str(volume) for volume in volumes) or "none"
    assert models in volumes, f"declare VOLUME {models}: the service saves its models there (the volumes declared: {declared})"


@pytest.mark.going_further(
    "a volume over the whole code folder hides the image's code, as the workshop's `-v $(pwd):/code` does",
    hint="declare the models folder only: VOLUME /code/models",
)
def test_only_the_models_are_on_the_volume(dockerfile):
    models = models_dir(dockerfile)
    for path in dockerfile.volumes():
        volume = dockerfile.workdir() / path
        assert not models.is_relative_to(volume) or volume == models, (
            f"VOLUME {volume} covers {models.parent} and the code in it: declare {models} only"
        )


@pytest.mark.going_further(
    "trained versions belong on the volume; copied from your checkout into the image, they would ship stale models",
    hint="leave ./models out of the build context (.dockerignore) and copy app/ and data/ by name",
)
def test_models_are_not_baked_into_the_image(dockerfile):
    models = models_dir(dockerfile)
    assert not dockerfile.sources_copied_to(PROJECT_ROOT, models), f"do not COPY anything to {models}: the volume provides it"
    ignore = DockerIgnore.read(PROJECT_ROOT)
    for source, landed in dockerfile.landings(PROJECT_ROOT):
        if models.is_relative_to(landed):  # e.g. COPY . /code would bring ./models along
            assert not ignore.included("models/mnist/1/model.keras"), (
                f"COPY {source} {landed} copies ./models too: leave it out (.dockerignore) or copy less"
            )
