"""Checks for part3/ex1_image: the Dockerfile that puts the Part 2 service in an image.

They read the Dockerfile as Docker would (workshop/dockerfile.py) without building it: no container engine
is needed to check the exercise.
"""

from pathlib import PurePosixPath

from app.paths import PROJECT_ROOT
from tests.exercises.expect import shown
from tests.exercises.part3.image_layout import import_folders, served_file
from workshop.dockerfile import DockerIgnore

HINTS = [
    'The workshop\'s Dockerfile: FROM python:3.12, WORKDIR /code, COPY requirements.txt, RUN pip install, COPY your app, CMD ["fastapi", "run", ..., "--port", "80"].',
    'Copy the `app/` package your Part 2 app imports, not only its file.',
]


def test_starts_from_python_3_12(dockerfile):
    assert dockerfile.base_image().startswith("python:3.12"), (
        f"FROM {dockerfile.base_image()}: start from the official Python 3.12 image, e.g. FROM python:3.12"
    )


def _requirements_install(dockerfile):
    """The RUN that pip-installs the copied requirements file, and that file's path in the image."""
    requirements = [landed for source, landed in dockerfile.landings(PROJECT_ROOT) if PurePosixPath(source).name == "requirements.txt"]
    assert requirements, "COPY ./requirements.txt into the image (e.g. to /code/requirements.txt)"
    for run in dockerfile.all("RUN"):
        words = run.words()
        if "pip" in words and "install" in words and "-r" in words:
            installed = dockerfile.workdir() / words[words.index("-r") + 1]
            if installed in requirements:
                return run, installed
    raise AssertionError(f"no RUN pip install -r {requirements[0]}: install the requirements you copied")


def test_installs_the_requirements_with_pip(dockerfile):
    run, _ = _requirements_install(dockerfile)
    assert "--no-cache-dir" in run.words(), "add --no-cache-dir: pip's download cache only makes the image bigger"


def test_installs_the_requirements_before_copying_the_code(dockerfile):
    """Then Docker reuses the slow install layer for as long as requirements.txt is unchanged."""
    run, _ = _requirements_install(dockerfile)
    code_copies = [
        instruction
        for sources, _, instruction in dockerfile.copies()
        if any(PurePosixPath(source).name != "requirements.txt" for source in sources)
    ]
    assert code_copies, "COPY the code into the image"
    assert all(dockerfile.index(run) < dockerfile.index(copy) for copy in code_copies), (
        f"line {run.line}: install the requirements before copying the code, so that a change to the code "
        "does not reinstall every package"
    )


def test_cmd_runs_fastapi_in_exec_form_on_port_80(dockerfile):
    served_file(dockerfile)
    words = dockerfile.last("CMD").exec_form
    assert "--port" in words and words[words.index("--port") + 1:][:1] == ["80"], (
        f"serve on port 80 inside the container (--port 80); the CMD is {shown(words)}"
    )
    assert "--reload" not in words and "dev" not in words[:2], "fastapi run, not dev or --reload: this is production"


def test_copies_the_service_it_runs(dockerfile):
    served = served_file(dockerfile)
    sources = dockerfile.sources_copied_to(PROJECT_ROOT, served)
    assert sources, f"the CMD serves {served}, but no COPY puts a file there (e.g. COPY ./exercises/part2/challenge_startup.py {served})"
    assert any(PurePosixPath(source).parts[:2] in {("exercises", "part2"), ("solutions", "part2")} for source in sources), (
        f"{served} is copied from {', '.join(sources)}: serve your Part 2 app (exercises/part2/challenge_startup.py)"
    )


def test_copies_the_plumbing_and_the_data_where_the_service_finds_them(dockerfile):
    """The service imports app.*, from beside it or from PYTHONPATH; app/paths.py finds data/ next to app/."""
    folders = import_folders(dockerfile)
    found = [folder / "app" for folder in folders if dockerfile.sources_copied_to(PROJECT_ROOT, folder / "app") == ["app"]]
    assert found, (
        f"COPY ./app {folders[0] / 'app'}: the service imports app/, next to it"
        + (f" or in the PYTHONPATH ({', '.join(str(folder) for folder in folders[1:])})" if folders[1:] else "")
    )
    data = found[0].parent / "data"
    assert dockerfile.sources_copied_to(PROJECT_ROOT, data) == ["data"], (
        f"COPY ./data {data}: app/ finds the data next to itself"
    )


def test_every_copied_file_is_in_the_build_context(dockerfile):
    """What .dockerignore leaves out of the context, COPY cannot find: the build would fail."""
    ignore = DockerIgnore.read(PROJECT_ROOT)
    for source, _ in dockerfile.landings(PROJECT_ROOT):
        assert (PROJECT_ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert ignore.files(PROJECT_ROOT, source), f"COPY {source}: .dockerignore leaves it out of the build context"
