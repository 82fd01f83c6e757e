"""Checks for part3/ex1_image: the Dockerfile that puts the Part 2 service in an image.

They read the Dockerfile as Docker would (workshop/dockerfile.py) without building it: no container engine
is needed to check the exercise.
"""

from pathlib import PurePosixPath

from workshop.dockerfile import DockerIgnore
from app.paths import PROJECT_ROOT

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


def _served_file(dockerfile) -> PurePosixPath:
    cmd = dockerfile.last("CMD")
    assert cmd is not None, 'add a CMD that starts the service, e.g. CMD ["fastapi", "run", "main.py", "--port", "80"]'
    words = cmd.exec_form
    assert words is not None, f"line {cmd.line}: write the CMD in exec form, a JSON list: CMD [\"fastapi\", \"run\", ...]"
    assert words[:2] == ["fastapi", "run"], f"line {cmd.line}: start the service with `fastapi run`, got {words}"
    files = [word for word in words[2:] if word.endswith(".py")]
    assert files, f"line {cmd.line}: name the Python file to serve, e.g. main.py"
    return dockerfile.workdir() / files[0]


def test_cmd_runs_fastapi_in_exec_form_on_port_80(dockerfile):
    _served_file(dockerfile)
    words = dockerfile.last("CMD").exec_form
    assert "--port" in words and words[words.index("--port") + 1:][:1] == ["80"], (
        f"serve on port 80 inside the container (--port 80), got {words}"
    )
    assert "--reload" not in words and "dev" not in words[:2], "fastapi run, not dev or --reload: this is production"


def test_copies_the_service_it_runs(dockerfile):
    served = _served_file(dockerfile)
    sources = dockerfile.sources_copied_to(PROJECT_ROOT, served)
    assert sources, f"the CMD serves {served}, but no COPY puts a file there (e.g. COPY ./exercises/part2/challenge_startup.py {served})"
    assert any(PurePosixPath(source).parts[:2] in {("exercises", "part2"), ("solutions", "part2")} for source in sources), (
        f"{served} is copied from {sources}: serve your Part 2 app (exercises/part2/challenge_startup.py)"
    )


def test_copies_the_plumbing_and_the_data_beside_the_service(dockerfile):
    """The service imports app.* and app/paths.py finds data/ next to app/: both must sit beside it."""
    folder = _served_file(dockerfile).parent
    for needed in ("app", "data"):
        assert dockerfile.sources_copied_to(PROJECT_ROOT, folder / needed) == [needed], (
            f"COPY ./{needed} {folder / needed}: the service needs {needed}/ next to it"
        )


def test_every_copied_file_is_in_the_build_context(dockerfile):
    """What .dockerignore leaves out of the context, COPY cannot find: the build would fail."""
    ignore = DockerIgnore.read(PROJECT_ROOT)
    for source, _ in dockerfile.landings(PROJECT_ROOT):
        assert (PROJECT_ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert ignore.files(PROJECT_ROOT, source), f"COPY {source}: .dockerignore leaves it out of the build context"
