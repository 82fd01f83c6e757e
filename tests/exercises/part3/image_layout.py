"""Where things are in the learner's image, read from the Dockerfile: what the CMD serves, where its
`import app` looks, where it saves its models. Shared by the Part 3 checks."""

from pathlib import PurePosixPath

from app.paths import PROJECT_ROOT
from tests.exercises.expect import shown


def served_file(dockerfile) -> PurePosixPath:
    """The Python file the CMD serves, in the image."""
    cmd = dockerfile.last("CMD")
    assert cmd is not None, 'add a CMD that starts the service, e.g. CMD ["fastapi", "run", "main.py", "--port", "80"]'
    words = cmd.exec_form
    assert words is not None, f"line {cmd.line}: write the CMD in exec form, a JSON list: CMD [\"fastapi\", \"run\", ...]"
    assert words[:2] == ["fastapi", "run"], f"line {cmd.line}: start the service with `fastapi run`; the CMD is {shown(words)}"
    files = [word for word in words[2:] if word.endswith(".py")]
    assert files, f"line {cmd.line}: name the Python file to serve, e.g. main.py"
    return dockerfile.workdir() / files[0]


def import_folders(dockerfile) -> list[PurePosixPath]:
    """Where the service's `import app` looks: beside the served file (fastapi run puts its folder on
    sys.path), and the image's PYTHONPATH."""
    workdir = dockerfile.workdir()
    extra = [workdir / path for path in dockerfile.env().get("PYTHONPATH", "").split(":") if path]
    return [served_file(dockerfile).parent, *extra]


def models_dir(dockerfile) -> PurePosixPath:
    """Where the service saves models: WORKSHOP_MODELS_DIR, else models/ beside app/ (app/paths.py)."""
    env = dockerfile.env()
    if "WORKSHOP_MODELS_DIR" in env:
        return dockerfile.workdir() / env["WORKSHOP_MODELS_DIR"]
    app_folders = [landed for source, landed in dockerfile.landings(PROJECT_ROOT) if source == "app"]
    assert app_folders, "COPY ./app into the image first (exercise 1)"
    return app_folders[0].parent / "models"
