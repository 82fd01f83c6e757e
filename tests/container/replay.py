"""Replay a Dockerfile without Docker: what the image would hold, built and started in a temporary folder.

A temporary folder stands for the image's `/`. Each instruction is replayed in order:

    WORKDIR /code                  -> <root>/code is created and becomes the working directory
    COPY app ./app                 -> copies ONLY what the build context holds (.dockerignore applied)
    RUN uv sync --locked ...       -> the same command, its environment in <root>/code/.venv (a NEW one)
    RUN mkdir -p /code/models      -> <root>/code/models
    ENV / USER / VOLUME / CMD ...  -> recorded; the CMD is started later with paths rebased into <root>

so a file the service needs but the Dockerfile forgets to copy, or a dependency it forgets to install,
fails here as it would in the image. What cannot be replayed without root or a registry is skipped
and checked elsewhere: `COPY --from=<image>` (the tool comes from the host instead), and the user
and ownership commands (tests/container/test_non_root.py reads them). Any other RUN command is
refused, so that a new step in the Dockerfile cannot go unreplayed silently.
"""

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from workshop.dockerfile import BASE_IMAGE_PATH, Dockerfile, DockerIgnore, Instruction, expand

# Commands that only set users and ownership: the replay runs as whoever runs the tests.
OWNERSHIP_COMMANDS = {"groupadd", "useradd", "addgroup", "adduser", "chown", "chmod"}
# Settings that change how uv installs, not what: dropped so the replay links from the uv cache
# (same filesystem here, unlike Docker's cache mount) instead of copying and compiling ~1 GB.
SPEED_ONLY_UV_SETTINGS = {"UV_LINK_MODE", "UV_COMPILE_BYTECODE"}


class ReplayError(AssertionError):
    """The Dockerfile asks for something the image could not do (or the replay cannot check)."""


@dataclass
class Replay:
    dockerfile: Dockerfile
    context: Path  # the build context (the repository)
    root: Path  # stands for the image's `/`
    workdir: PurePosixPath = PurePosixPath("/")
    env: dict[str, str] = field(default_factory=dict)  # the image's ENV so far, as the image sees it
    copied: list[PurePosixPath] = field(default_factory=list)  # files copied, relative to the context
    skipped: list[str] = field(default_factory=list)  # what was not replayed, and why
    log: list[str] = field(default_factory=list)  # what was run, for failure messages

    # -- paths ---------------------------------------------------------------------------------

    def host_path(self, image_path: str | PurePosixPath) -> Path:
        """Where an image path lives in the replay (relative paths resolve against WORKDIR)."""
        path = self.workdir / PurePosixPath(image_path)
        return self.root / str(path).lstrip("/")

    def rebase_value(self, value: str) -> str:
        """An ENV value as the replay must see it: image paths under WORKDIR or HOME move into the root."""
        prefixes = [str(self.workdir), "/home"]

        def rebase(entry: str) -> str:
            for prefix in prefixes:
                if prefix != "/" and (entry == prefix or entry.startswith(prefix + "/")):
                    return str(self.host_path(entry))
            return entry

        return ":".join(rebase(entry) for entry in value.split(":"))

    # -- instructions ----------------------------------------------------------------------------

    def build(self) -> "Replay":
        self.dockerfile.single_stage()
        for instruction in self.dockerfile.instructions:
            handler = getattr(self, f"_{instruction.keyword.lower()}", None)
            if handler is None:
                raise ReplayError(f"line {instruction.line}: the replay does not know {instruction.keyword}")
            handler(instruction)
        return self

    def _from(self, instruction: Instruction) -> None:
        image = instruction.words()[0]
        if not image.startswith("python:3.12"):
            raise ReplayError(f"line {instruction.line}: the replay stands in python:3.12 images only, not {image}")
        # The base image's own interpreter stands for its /usr/local/bin/python3.12.
        self.log.append(f"FROM {image} -> {base_python()}")

    def _workdir(self, instruction: Instruction) -> None:
        self.workdir = self.workdir / expand(instruction.arguments, self.env)
        self.host_path(self.workdir).mkdir(parents=True, exist_ok=True)

    def _env(self, instruction: Instruction) -> None:
        single = Dockerfile([Instruction("FROM", "scratch", 0), instruction])
        self.env.update(single.env(base=self.env))

    def _copy(self, instruction: Instruction) -> None:
        if instruction.flag("from") is not None:
            source_image = instruction.flag("from")
            self.skipped.append(f"line {instruction.line}: COPY --from={source_image} (the host's tool stands in)")
            return
        ignore = DockerIgnore.read(self.context)
        words = instruction.words()
        sources, destination = words[:-1], expand(words[-1], self.env)
        into_folder = destination.endswith("/") or len(sources) > 1
        for source in sources:
            source = os.path.normpath(expand(source, self.env)).lstrip("/")
            if any(char in source for char in "*?["):
                raise ReplayError(f"line {instruction.line}: the replay copies plain paths, not patterns ({source})")
            if not (self.context / source).exists():
                raise ReplayError(f"line {instruction.line}: COPY {source}: no such file in the build context")
            files = ignore.files(self.context, source)
            if not files:
                raise ReplayError(
                    f"line {instruction.line}: COPY {source}: .dockerignore leaves nothing of it in the context"
                )
            is_folder = (self.context / source).is_dir()
            for relative in files:
                inside = PurePosixPath(relative).relative_to(source) if is_folder else PurePosixPath(relative.name)
                if is_folder or into_folder:
                    target = self.host_path(PurePosixPath(destination) / inside)
                else:
                    target = self.host_path(destination)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.context / relative, target)
                self.copied.append(relative)

    def _add(self, instruction: Instruction) -> None:
        if "://" in instruction.arguments:
            raise ReplayError(f"line {instruction.line}: ADD of a URL cannot be replayed offline; prefer COPY")
        self._copy(instruction)

    def _run(self, instruction: Instruction) -> None:
        for mount in instruction.flag_values("mount"):
            options = dict(part.partition("=")[::2] for part in mount.split(","))
            if options.get("type") not in {"cache", None}:
                raise ReplayError(f"line {instruction.line}: RUN --mount={mount} is not replayed (only cache mounts)")
        text = instruction.exec_form and shlex.join(instruction.exec_form) or instruction.arguments
        for command in _split_and(text, instruction.line):
            self._run_command(command, instruction.line)

    def _run_command(self, words: list[str], line: int) -> None:
        program = words[0]
        if program in OWNERSHIP_COMMANDS:
            self.skipped.append(f"line {line}: {shlex.join(words)} (users and ownership: see test_non_root.py)")
        elif program == "mkdir":
            for path in (word for word in words[1:] if not word.startswith("-")):
                self.host_path(expand(path, self.env)).mkdir(parents=True, exist_ok=True)
        elif words[:2] == ["uv", "sync"]:
            self._uv_sync(words, line)
        else:
            raise ReplayError(f"line {line}: the replay does not know how to run {shlex.join(words)!r}; teach it")

    def _uv_sync(self, words: list[str], line: int) -> None:
        uv = os.environ.get("UV") or shutil.which("uv")
        if uv is None:
            raise ReplayError("uv is not installed on this machine")
        environment = self.process_env(for_build=True)
        command = [uv, *words[1:]]
        self.log.append(f"RUN (line {line}): {shlex.join(command)} in {self.host_path(self.workdir)}")
        result = subprocess.run(
            command, cwd=self.host_path(self.workdir), env=environment, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise ReplayError(f"line {line}: {shlex.join(words)} failed:\n{result.stderr[-3000:]}")

    def _user(self, instruction: Instruction) -> None:
        self.skipped.append(
            f"line {instruction.line}: USER {instruction.arguments} (the replay runs as the test's user)"
        )

    def _volume(self, instruction: Instruction) -> None:
        for path in instruction.words():
            self.host_path(path).mkdir(parents=True, exist_ok=True)

    def _expose(self, instruction: Instruction) -> None:
        pass

    def _healthcheck(self, instruction: Instruction) -> None:
        pass

    def _cmd(self, instruction: Instruction) -> None:
        pass

    def _label(self, instruction: Instruction) -> None:
        pass

    # -- running ---------------------------------------------------------------------------------

    def process_env(self, for_build: bool = False, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The image's ENV rebased into the root, on a clean base: nothing of the test session's settings.

        The build steps also keep this machine's network and certificate settings (the builder's uv
        reaches the package index as the host's does); the service gets none of them.
        """
        environment = {
            "HOME": str(self.root / "home" / "replay"),
            "LANG": "C.UTF-8",
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "PATH": BASE_IMAGE_PATH,
        }
        if for_build:
            environment = {**_host_build_env(), **environment}
        Path(environment["HOME"]).mkdir(parents=True, exist_ok=True)
        for key, value in self.env.items():
            environment[key] = self.rebase_value(value)
        if for_build:
            for key in SPEED_ONLY_UV_SETTINGS:
                environment.pop(key, None)
            environment.setdefault("UV_PROJECT_ENVIRONMENT", str(self.host_path(self.workdir / ".venv")))
            environment["UV_PYTHON"] = base_python()
            environment.setdefault("UV_CACHE_DIR", _uv_cache_dir())
        return {**environment, **(extra or {})}

    def command(self, words: list[str], port: int, host: str = "127.0.0.1") -> list[str]:
        """The CMD with its --port changed and bound to loopback, its program found in the replay's PATH."""
        words = list(words)
        if "--port" not in words:
            raise ReplayError(f"the CMD {words} names no --port")
        words[words.index("--port") + 1] = str(port)
        program = shutil.which(words[0], path=self.process_env()["PATH"])
        if program is None or not Path(program).resolve().is_relative_to(self.root.resolve()):
            raise ReplayError(f"{words[0]} is not installed in the image (found {program})")
        return [program, *words[1:], "--host", host]

    def healthcheck(self, original_port: str, port: int) -> list[str]:
        words = self.dockerfile.healthcheck_command()
        if words is None:
            raise ReplayError("the Dockerfile has no HEALTHCHECK")
        return [word.replace(f":{original_port}/", f":{port}/") for word in words]


def _split_and(text: str, line: int) -> list[list[str]]:
    """`a && b && c` -> [[a...], [b...], [c...]]; other shell syntax is refused rather than guessed."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars="&|;<>()")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token == "&&":
            commands.append([])
        elif token and set(token) <= set("&|;<>()"):
            raise ReplayError(f"line {line}: the replay runs `a && b` chains only, not {token!r}")
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def base_python() -> str:
    """The interpreter standing for the image's /usr/local/bin/python3.12: the one running the tests
    (outside its virtual environment), which the project requires to be a 3.12 too."""
    candidate = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(candidate if candidate.exists() else Path(sys._base_executable))


def _host_build_env() -> dict[str, str]:
    """This machine's environment less what points at the test session's project, venv or settings."""
    session_only = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT", "CONDA_PREFIX", "HOME"}
    return {
        key: value
        for key, value in os.environ.items()
        if key not in session_only and not key.startswith(("WORKSHOP_", "PYTEST_", "KERAS_", "TF_"))
    }


def _uv_cache_dir() -> str:
    uv = os.environ.get("UV") or shutil.which("uv") or "uv"
    result = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True)
    return result.stdout.strip() or str(Path.home() / ".cache" / "uv")
