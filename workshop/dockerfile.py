"""Read a Dockerfile and a .dockerignore the way Docker does, without Docker.

The workshop's Part 3 checks (tests/exercises/part3) and the container tests (tests/container) read
the learner's and the project's Dockerfiles with this instead of guessing with regular expressions:

    dockerfile = Dockerfile.read(PROJECT_ROOT / "Dockerfile")
    dockerfile.last("CMD").exec_form        -> ["fastapi", "run", "app/part3/main.py", "--port", "80"]
    dockerfile.env()                        -> {"WORKSHOP_MODELS_DIR": "/code/models", ...}
    DockerIgnore.read(PROJECT_ROOT).included(Path("models/mnist/1/model.keras"))  -> False

It covers what these files use (comments, line continuations, `--flag=value` options, exec and shell
forms, ENV in both syntaxes with $VAR expansion); heredocs are refused loudly. A multi-stage file is
read one target at a time: `Dockerfile.read(path).target("serve")` is the single-stage equivalent
of `docker build --target serve` (the stages it builds on, in order, under the first FROM).
"""

import json
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# The PATH of the official python images, which ENV PATH="...:$PATH" extends.
BASE_IMAGE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_FLAG = re.compile(r"--(?P<name>[a-z][a-z-]*)(?:=(?P<value>\S*))?\s*")


class DockerfileError(ValueError):
    """A Dockerfile this reader cannot interpret (the message names the line)."""


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str  # the text after the keyword and its --flags, continuations joined
    line: int  # 1-based line of the keyword
    flags: tuple[tuple[str, str], ...] = ()  # e.g. (("mount", "type=cache,target=/root/.cache/uv"),)

    def flag(self, name: str) -> str | None:
        return next((value for key, value in self.flags if key == name), None)

    def flag_values(self, name: str) -> list[str]:
        return [value for key, value in self.flags if key == name]

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of `CMD ["fastapi", "run", ...]`, or None for the shell form."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        try:
            words = json.loads(text)
        except json.JSONDecodeError:
            return None  # Docker runs a malformed array through the shell too
        return words if isinstance(words, list) and all(isinstance(w, str) for w in words) else None

    def words(self) -> list[str]:
        """The arguments as words: the exec form's list, or the shell form split like a shell would."""
        return self.exec_form if self.exec_form is not None else shlex.split(self.arguments)


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, instruction text) with comments dropped and `\\` continuations joined."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue  # comment lines (and blank lines) may sit inside a continued instruction
        if not stripped:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        yield start, " ".join(part for part in pending if part)
        pending = []
    if pending:
        yield start, " ".join(pending)


def _split_flags(text: str) -> tuple[tuple[tuple[str, str], ...], str]:
    flags = []
    while (match := _FLAG.match(text)) is not None:
        flags.append((match.group("name"), match.group("value") or ""))
        text = text[match.end() :]
    return tuple(flags), text


def expand(value: str, variables: dict[str, str]) -> str:
    """Docker's `$VAR` / `${VAR}` expansion in ENV, WORKDIR, COPY... (unknown variables become empty)."""
    return _VARIABLE.sub(lambda m: variables.get(m.group("braced") or m.group("bare"), ""), value)


def _env_pairs(arguments: str, line: int) -> list[tuple[str, str]]:
    words = shlex.split(arguments, posix=True)
    if words and "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        return [(words[0], arguments.split(None, 1)[1] if len(words) > 1 else "")]
    pairs = []
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            raise DockerfileError(f"line {line}: ENV mixes KEY=value and KEY value forms: {arguments!r}")
        pairs.append((key, value))
    return pairs


@dataclass
class Dockerfile:
    instructions: list[Instruction] = field(default_factory=list)
    path: Path | None = None

    @classmethod
    def parse(cls, text: str, path: Path | None = None) -> "Dockerfile":
        instructions = []
        for line, logical in _logical_lines(text):
            keyword, _, rest = logical.partition(" ")
            if "<<" in rest and keyword.upper() in {"RUN", "COPY"}:
                raise DockerfileError(f"line {line}: heredocs are not supported by this reader")
            flags, arguments = _split_flags(rest.strip())
            instructions.append(Instruction(keyword.upper(), arguments.strip(), line, flags))
        if not instructions or instructions[0].keyword not in {"FROM", "ARG"}:
            raise DockerfileError(f"{path or 'Dockerfile'}: the first instruction must be FROM")
        return cls(instructions, path)

    @classmethod
    def read(cls, path: Path) -> "Dockerfile":
        return cls.parse(Path(path).read_text(), path)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword.upper()]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def index(self, instruction: Instruction) -> int:
        return self.instructions.index(instruction)

    def stages(self) -> dict[str, list[Instruction]]:
        """{stage name (or its index): its instructions, FROM first}."""
        found: dict[str, list[Instruction]] = {}
        for instruction in self.instructions:
            if instruction.keyword == "FROM":
                words = instruction.words()
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(found))
                found[name] = []
            if found:
                found[list(found)[-1]].append(instruction)
        return found

    def target(self, name: str | None = None) -> "Dockerfile":
        """The single-stage Dockerfile that builds stage `name` (default: the last one, as Docker does):
        its parent stages' instructions first, a `FROM <stage>` dropped in favour of its parent's FROM."""
        stages = self.stages()
        name = name if name is not None else list(stages)[-1]
        if name not in stages:
            raise DockerfileError(f"{self.path or 'Dockerfile'}: no stage named {name!r} (it has {', '.join(stages)})")
        chain: list[list[Instruction]] = []
        while True:
            stage = stages[name]
            chain.insert(0, stage)
            parent = stage[0].words()[0]
            if parent not in stages or parent == name:
                break
            name = parent
        instructions = chain[0] + [instruction for stage in chain[1:] for instruction in stage[1:]]
        return Dockerfile(instructions, self.path)

    def single_stage(self) -> None:
        if len(self.all("FROM")) != 1:
            raise DockerfileError("multi-stage Dockerfiles are not supported by this reader")

    def base_image(self) -> str:
        return self.all("FROM")[-1].words()[0]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment the final image sets, in order, with $VAR expanded (PATH starts as the base image's)."""
        variables = {"PATH": BASE_IMAGE_PATH, **(base or {})}
        declared: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for key, value in _env_pairs(instruction.arguments, instruction.line):
                variables[key] = declared[key] = expand(value, variables)
        return declared

    def workdir(self) -> PurePosixPath:
        """The final working directory (relative WORKDIRs resolve against the previous one)."""
        current = PurePosixPath("/")
        for instruction in self.all("WORKDIR"):
            current = current / expand(instruction.arguments.strip(), self.env())
        return current

    def user(self) -> str | None:
        """The final USER's name or uid (without a :group), or None when the image keeps root."""
        last = self.last("USER")
        return last.arguments.split(":")[0].strip() if last else None

    def volumes(self) -> list[str]:
        paths: list[str] = []
        for instruction in self.all("VOLUME"):
            paths += instruction.words()
        return paths

    def healthcheck_command(self) -> list[str] | None:
        """The HEALTHCHECK's command as an argv (a shell form becomes ["/bin/sh", "-c", text])."""
        last = self.last("HEALTHCHECK")
        if last is None or last.arguments.upper() == "NONE":
            return None
        keyword, _, command = last.arguments.partition(" ")
        if keyword.upper() != "CMD":
            raise DockerfileError(f"line {last.line}: HEALTHCHECK without CMD")
        command_instruction = Instruction("CMD", command.strip(), last.line)
        return command_instruction.exec_form or ["/bin/sh", "-c", command.strip()]

    def copies(self) -> list[tuple[list[str], str, Instruction]]:
        """(sources, destination, instruction) for each COPY/ADD from the build context (not --from)."""
        found = []
        for instruction in self.instructions:
            if instruction.keyword in {"COPY", "ADD"} and instruction.flag("from") is None:
                words = instruction.words()
                if len(words) < 2:
                    raise DockerfileError(
                        f"line {instruction.line}: {instruction.keyword} needs a source and a destination"
                    )
                found.append((words[:-1], words[-1], instruction))
        return found

    def landings(self, context: Path) -> list[tuple[str, PurePosixPath]]:
        """(source in the context, where it lands in the image) for each COPY source, by Docker's rules:
        a folder's contents go into the destination; a file goes into it when it is a folder (ends
        with /, is the WORKDIR, or receives several sources), else becomes it."""
        workdir = self.workdir()
        landed = []
        for sources, destination, _ in self.copies():
            target = workdir / destination
            into_folder = destination.endswith("/") or target == workdir or len(sources) > 1
            for source in sources:
                source = os.path.normpath(source).lstrip("/")
                folder = (Path(context) / source).is_dir()
                landed.append((source, target / PurePosixPath(source).name if into_folder and not folder else target))
        return landed

    def sources_copied_to(self, context: Path, image_path: PurePosixPath) -> list[str]:
        return [source for source, landed in self.landings(context) if landed == image_path]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: Go's filepath.Match plus `**` for any number of folders."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif char == "*":
            out, i = out + "[^/]*", i + 1
        elif char == "?":
            out, i = out + "[^/]", i + 1
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out, i = out + re.escape(char), i + 1
            else:
                body = pattern[i + 1 : end]
                body = "^" + body[1:] if body.startswith("^") else body
                out, i = out + f"[{body}]", end + 1
        elif char == "\\" and i + 1 < len(pattern):
            out, i = out + re.escape(pattern[i + 1]), i + 2
        else:
            out, i = out + re.escape(char), i + 1
    return re.compile(out + r"\Z")


@dataclass(frozen=True)
class DockerIgnore:
    """The patterns of a .dockerignore: the last pattern matching a path (or a folder above it) decides."""

    rules: tuple[tuple[bool, re.Pattern[str]], ...] = ()  # (is an exception `!...`, pattern)

    @classmethod
    def parse(cls, text: str) -> "DockerIgnore":
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            line = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
            rules.append((exception, _pattern_regex(line)))
        return cls(tuple(rules))

    @classmethod
    def read(cls, context: Path) -> "DockerIgnore":
        ignore_file = Path(context) / ".dockerignore"
        return cls.parse(ignore_file.read_text()) if ignore_file.exists() else cls()

    def included(self, relative: PurePosixPath | Path | str) -> bool:
        """Is this path (relative to the build context) sent to the builder?"""
        parts = PurePosixPath(relative).parts
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for exception, pattern in self.rules:
            if any(pattern.match(prefix) for prefix in prefixes):
                excluded = not exception
        return not excluded

    def files(self, context: Path, under: str = ".") -> list[PurePosixPath]:
        """Every file under `under` (relative to the context) that the build context would hold."""
        root = Path(context)
        start = root / under
        candidates = [start] if start.is_file() else sorted(p for p in start.rglob("*") if p.is_file())
        relative = (PurePosixPath(p.relative_to(root).as_posix()) for p in candidates)
        return [path for path in relative if self.included(path)]
