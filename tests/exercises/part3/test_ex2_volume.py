"""Checks for part3/ex2_volume: the models live on a volume, not in the image nor its writable layer."""

from pathlib import PurePosixPath

from workshop.dockerfile import DockerIgnore
from app.paths import PROJECT_ROOT

HINTS = [
    'The models must live on a volume: declare `VOLUME` for the folder the store writes to.',
    'Leave ./models out of the image (.dockerignore), or copy less than the whole folder.',
]


def _models_dir(dockerfile) -> PurePosixPath:
    """Where the service saves models: WORKSHOP_MODELS_DIR, else models/ beside app/ (app/paths.py)."""
    env = dockerfile.env()
    if "WORKSHOP_MODELS_DIR" in env:
        return dockerfile.workdir() / env["WORKSHOP_MODELS_DIR"]
    app_folders = [landed for source, landed in dockerfile.landings(PROJECT_ROOT) if source == "app"]
    assert app_folders, "COPY ./app into the image first (exercise 1)"
    return app_folders[0].parent / "models"


def test_declares_the_models_folder_as_a_volume(dockerfile):
    models = _models_dir(dockerfile)
    volumes = [dockerfile.workdir() / path for path in dockerfile.volumes()]
    assert models in volumes, f"declare VOLUME {models}: the service saves its models there (volumes: {volumes})"


def test_only_the_models_are_on_the_volume(dockerfile):
    """A volume over the whole code folder (the workshop's -v $(pwd):/code) hides the image's code."""
    models = _models_dir(dockerfile)
    for path in dockerfile.volumes():
        volume = dockerfile.workdir() / path
        assert not models.is_relative_to(volume) or volume == models, (
            f"VOLUME {volume} covers {models.parent} and the code in it: declare {models} only"
        )


def test_models_are_not_baked_into_the_image(dockerfile):
    """Trained versions belong on the volume; copied from your checkout they would ship stale models."""
    models = _models_dir(dockerfile)
    assert not dockerfile.sources_copied_to(PROJECT_ROOT, models), f"do not COPY anything to {models}: the volume provides it"
    ignore = DockerIgnore.read(PROJECT_ROOT)
    for source, landed in dockerfile.landings(PROJECT_ROOT):
        if models.is_relative_to(landed):  # e.g. COPY . /code would bring ./models along
            assert not ignore.included("models/mnist/1/model.keras"), (
                f"COPY {source} {landed} copies ./models too: leave it out (.dockerignore) or copy less"
            )
