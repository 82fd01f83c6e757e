"""workshop/dockerfile.py reads Dockerfiles and .dockerignore files as Docker does (the checks rely on it)."""

from pathlib import PurePosixPath

import pytest

from app.paths import PROJECT_ROOT
from workshop.dockerfile import Dockerfile, DockerfileError, DockerIgnore

EXAMPLE = """\
# syntax=docker/dockerfile:1
FROM python:3.12-slim
ENV A=1 \\
    # a comment inside a continued instruction
    PATH="/code/.venv/bin:$PATH"
ENV LEGACY some value
WORKDIR /code
WORKDIR sub
RUN --mount=type=cache,target=/root/.cache/uv \\
    uv sync --locked
COPY --chown=1:1 ["a b.txt", "c.txt", "./"]
COPY --from=other /x /y
USER 10001:10001
HEALTHCHECK --interval=5s CMD curl -f http://localhost/ || exit 1
CMD ["fastapi", "run", "main.py"]
"""


@pytest.fixture
def example() -> Dockerfile:
    return Dockerfile.parse(EXAMPLE)


def test_instructions_continuations_and_comments(example):
    assert [i.keyword for i in example.instructions] == [
        "FROM",
        "ENV",
        "ENV",
        "WORKDIR",
        "WORKDIR",
        "RUN",
        "COPY",
        "COPY",
        "USER",
        "HEALTHCHECK",
        "CMD",
    ]
    run = example.last("RUN")
    assert run.arguments == "uv sync --locked" and run.line == 9
    assert run.flag("mount") == "type=cache,target=/root/.cache/uv"


def test_env_both_syntaxes_with_expansion(example):
    env = example.env()
    assert env["A"] == "1" and env["LEGACY"] == "some value"
    assert env["PATH"].startswith("/code/.venv/bin:/usr/local/bin")


def test_workdir_user_healthcheck_and_cmd(example):
    assert example.workdir() == PurePosixPath("/code/sub")
    assert example.user() == "10001"
    assert example.healthcheck_command() == ["/bin/sh", "-c", "curl -f http://localhost/ || exit 1"]
    assert example.last("CMD").exec_form == ["fastapi", "run", "main.py"]


def test_copies_from_the_context_only(example):
    [(sources, destination, copy)] = example.copies()
    assert sources == ["a b.txt", "c.txt"] and destination == "./" and copy.flag("chown") == "1:1"


def test_where_copies_land(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "main.py").write_text("")
    dockerfile = Dockerfile.parse(
        "FROM python:3.12\nWORKDIR /code\nCOPY app ./app\nCOPY main.py .\nCOPY main.py /srv/x.py\n"
    )
    assert dockerfile.landings(tmp_path) == [
        ("app", PurePosixPath("/code/app")),
        ("main.py", PurePosixPath("/code/main.py")),
        ("main.py", PurePosixPath("/srv/x.py")),
    ]


@pytest.mark.parametrize("text", ["RUN x", "FROM a AS b\nRUN <<EOF\nx\nEOF\n"])
def test_refuses_what_it_cannot_read(text):
    with pytest.raises(DockerfileError):
        Dockerfile.parse(text)


def test_refuses_multi_stage_builds():
    with pytest.raises(DockerfileError):
        Dockerfile.parse("FROM a AS build\nFROM b\n").single_stage()


def test_dockerignore_last_match_wins_and_folders_cover_their_contents():
    ignore = DockerIgnore.parse("*\n!app/\n!data\n**/__pycache__\napp/secret.txt\n")
    assert ignore.included("app/main.py") and ignore.included("data/x/y.png")
    assert not ignore.included("models/mnist/1/model.keras")
    assert not ignore.included("app/__pycache__/main.cpython-312.pyc")
    assert not ignore.included("app/secret.txt")


def test_dockerignore_patterns():
    ignore = DockerIgnore.parse("/build\n*.log\n**/*.tmp\ndocs/?.md\n")
    assert not ignore.included("build/out") and ignore.included("src/build/out")
    assert not ignore.included("x.log") and ignore.included("sub/x.log")  # * stays within one folder
    assert not ignore.included("a/b/c.tmp") and not ignore.included("c.tmp")
    assert not ignore.included("docs/a.md") and ignore.included("docs/ab.md")


def test_the_projects_context_holds_what_the_images_need_and_nothing_local():
    ignore = DockerIgnore.read(PROJECT_ROOT)
    for needed in (
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "app/part3/main.py",
        "data/train_img.zip",
        "requirements.txt",
    ):
        assert ignore.included(needed), needed
    for local in (
        ".venv/bin/python",
        "models/mnist/1/model.keras",
        ".git/HEAD",
        "app/__pycache__/x.pyc",
        "tests/conftest.py",
        "notebooks/mnist.ipynb",
        "artifacts/x.png",
        "bench/results/x.json",
    ):
        assert not ignore.included(local), local


def test_a_target_is_its_stages_in_order_under_the_first_from():
    text = (
        'FROM python:3.12 AS base\nENV A=1\nFROM base AS serve\nCMD ["s"]\n'
        'FROM base AS train\nENV B=2\nFROM train AS all\nCMD ["t"]\n'
    )
    dockerfile = Dockerfile.parse(text)
    assert list(dockerfile.stages()) == ["base", "serve", "train", "all"]
    serve, default = dockerfile.target("serve"), dockerfile.target()
    serve.single_stage()
    assert serve.base_image() == "python:3.12" and serve.env() == {"A": "1"} and serve.last("CMD").exec_form == ["s"]
    assert default.env() == {"A": "1", "B": "2"} and default.last("CMD").exec_form == ["t"]
    with pytest.raises(DockerfileError):
        dockerfile.target("nope")


def test_the_projects_targets_install_what_each_one_runs():
    """serve: the [project] dependencies only; train and the default standalone: the train group too."""
    dockerfile = Dockerfile.read(PROJECT_ROOT / "Dockerfile")
    assert list(dockerfile.stages())[-1] == "standalone"
    syncs = {
        name: [run.arguments for run in dockerfile.target(name).all("RUN") if "uv sync" in run.arguments]
        for name in ("serve", "train", "standalone")
    }
    assert syncs["serve"] and all("--no-default-groups" in s and "--group" not in s for s in syncs["serve"])
    assert syncs["train"] == syncs["standalone"] and all("--group train" in s for s in syncs["train"])
    assert dockerfile.target("train").last("CMD").exec_form == ["python", "-m", "app.part3.trainer_worker"]
    for name in ("serve", "standalone"):
        assert dockerfile.target(name).last("CMD").exec_form[:3] == ["fastapi", "run", "app/part3/main.py"]
        assert dockerfile.target(name).user() == "10001"
