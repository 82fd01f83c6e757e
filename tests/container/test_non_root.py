"""The container runs as a non-root user that can write the models volume and nothing else.

These tests run as root with no container engine, so they read the Dockerfile's structure: the
replay (test_replay.py) skips the user and ownership commands and relies on what is checked here.
"""

import shlex
from pathlib import PurePosixPath

import pytest

from app.paths import PROJECT_ROOT
from workshop.dockerfile import Dockerfile

# Commands that need root at build time: every RUN using one must come before the final USER.
NEEDS_ROOT = {
    "apt-get",
    "apt",
    "apk",
    "useradd",
    "groupadd",
    "adduser",
    "addgroup",
    "chown",
    "chmod",
    "mkdir",
    "pip",
    "uv",
}


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return Dockerfile.read(PROJECT_ROOT / "Dockerfile").target()


def _commands(dockerfile: Dockerfile) -> list[tuple[int, list[str]]]:
    """(index of the RUN, words) for each command of each RUN's `a && b` chain."""
    found = []
    for run in dockerfile.all("RUN"):
        for command in run.arguments.split("&&"):
            found.append((dockerfile.index(run), shlex.split(command)))
    return found


def _option(words: list[str], *names: str) -> str | None:
    for n, word in enumerate(words):
        for name in names:
            if word == name and n + 1 < len(words):
                return words[n + 1]
            if word.startswith(name + "="):
                return word.partition("=")[2]
    return None


@pytest.fixture(scope="module")
def service_user(dockerfile) -> dict[str, str]:
    """The user the final USER names, as created by useradd: {name, uid, gid, group}."""
    user = dockerfile.user()
    assert user is not None, "no USER: the service would run as root"
    group_part = dockerfile.last("USER").arguments.partition(":")[2].strip()
    for _, words in _commands(dockerfile):
        if words[0] == "useradd":
            created = {"name": words[-1], "uid": _option(words, "--uid", "-u"), "group": _option(words, "--gid", "-g")}
            if user in (created["name"], created["uid"]):
                groups = {w[-1]: _option(w, "--gid", "-g") for _, w in _commands(dockerfile) if w[0] == "groupadd"}
                created["gid"] = groups.get(created["group"], created["group"])
                if group_part:
                    assert group_part in (created["group"], created["gid"]), (
                        f"USER {user}:{group_part} is not the user's group"
                    )
                return created
    raise AssertionError(f"USER {user} is not created by a useradd in the Dockerfile")


def test_the_final_user_is_not_root(dockerfile, service_user):
    assert dockerfile.user() not in {"root", "0"}
    assert service_user["uid"] is not None and int(service_user["uid"]) >= 1000, (
        "give the user a fixed uid outside the system range, so volumes' ownership is predictable"
    )
    assert dockerfile.user().isdigit(), "USER by number: Kubernetes' runAsNonRoot cannot check a name"


def test_nothing_runs_as_root_after_the_switch(dockerfile):
    switch = dockerfile.index(dockerfile.last("USER"))
    for index, words in _commands(dockerfile):
        if words[0] in NEEDS_ROOT:
            assert index < switch, (
                f"line {dockerfile.instructions[index].line}: {words[0]} after USER fails as non-root"
            )
    assert all(dockerfile.index(cmd) > switch for cmd in dockerfile.all("CMD")), "USER must come before the CMD"


def test_the_models_volume_is_created_and_owned_by_the_user(dockerfile, service_user):
    models = PurePosixPath(dockerfile.env()["WORKSHOP_MODELS_DIR"])
    volume = next((i for i in dockerfile.all("VOLUME") if str(models) in i.words()), None)
    assert volume is not None, f"declare VOLUME {models}"
    owners = {service_user["name"], service_user["uid"]}
    groups = {service_user["group"], service_user["gid"]}
    made = chowned = None
    for index, words in _commands(dockerfile):
        if words[0] == "mkdir" and str(models) in words:
            made = index
        if words[0] == "chown" and str(models) in words:
            owner, _, group = words[-2].partition(":") if len(words) >= 3 else ("", "", "")
            assert owner in owners and (not group or group in groups), (
                f"{models} chowned to {words[-2]}, not the service's user"
            )
            chowned = index
    assert made is not None, f"mkdir {models} in the image, so that a new named volume copies it, owner included"
    assert chowned is not None, f"chown {models} to the service's user, or it cannot save a model"
    # Docker discards what a build step changes in a volume path after the VOLUME line.
    assert made <= chowned < dockerfile.index(volume), f"create and chown {models} before `VOLUME {models}`"


def test_the_code_stays_owned_by_root(dockerfile, service_user):
    """The service can write its models but cannot rewrite its own code or environment."""
    for _, _, copy in dockerfile.copies():
        assert copy.flag("chown") is None, f"line {copy.line}: COPY --chown gives the service its own code"
    models = str(PurePosixPath(dockerfile.env()["WORKSHOP_MODELS_DIR"]))
    for index, words in _commands(dockerfile):
        if words[0] == "chown":
            assert [w for w in words[1:] if w.startswith("/")] == [models] and "-R" not in words, (
                f"line {dockerfile.instructions[index].line}: only {models} belongs to the service's user"
            )
