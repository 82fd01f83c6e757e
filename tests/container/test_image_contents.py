"""Every target of the production image copies the runtime only: app/ and what it reads, never the
workshop's tooling (workshop/), bench/, tests/ or notebooks/. Read from the Dockerfile (no engine);
test_replay.py builds the default target and checks the same of what lands in the image."""

import pytest

from app.paths import PROJECT_ROOT
from workshop.dockerfile import Dockerfile, DockerIgnore

RUNTIME = {"pyproject.toml", "uv.lock", "README.md", "app", "data"}
TOOLING = {"workshop", "bench", "tests", "notebooks", "solutions", "exercises", "scripts"}
TARGETS = Dockerfile.read(PROJECT_ROOT / "Dockerfile").stages()


@pytest.mark.parametrize("target", [name for name in TARGETS if name != "base"])
def test_each_target_copies_the_runtime_only(target):
    dockerfile = Dockerfile.read(PROJECT_ROOT / "Dockerfile").target(target)
    copied = {source.split("/")[0] for source, _ in dockerfile.landings(PROJECT_ROOT)}
    assert copied <= RUNTIME, f"the {target} target copies {sorted(copied - RUNTIME)}, which the service never runs"


def test_the_build_context_leaves_the_tooling_out():
    ignore = DockerIgnore.read(PROJECT_ROOT)
    assert ignore.included("app/part3/main.py")
    for folder in TOOLING - {"solutions", "exercises"}:  # the learner's Dockerfile copies its Part 2 app
        assert not ignore.included(f"{folder}/__init__.py"), f"{folder}/ reaches the image's build context"


@pytest.mark.parametrize("target", ["serve", "train", "standalone"])
def test_each_command_runs_code_the_image_holds(target):
    """A CMD that names a module (`python -m app....`) or a file (`fastapi run app/...`) finds it in app/."""
    command = Dockerfile.read(PROJECT_ROOT / "Dockerfile").target(target).last("CMD").exec_form
    if command[:2] == ["python", "-m"]:
        module = command[2]
        assert module.split(".")[0] == "app", command
        assert (PROJECT_ROOT / (module.replace(".", "/") + ".py")).exists(), command
    else:
        assert command[:2] == ["fastapi", "run"] and command[2].startswith("app/"), command
        assert (PROJECT_ROOT / command[2]).exists(), command
