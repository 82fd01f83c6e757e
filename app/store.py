"""A versioned model store on disk, after TF Serving's layout.

    models/<name>/<version>/<model file> + metadata.json (+ a serving file, e.g. model.onnx)
    models/<name>/ACTIVE          optional: the version to serve instead of the newest promoted one

A version is written complete under a temporary name in the same folder and renamed into place, so a
reader sees either nothing or the whole model. Renaming onto an existing version fails, so two
processes publishing at once get two different numbers and neither overwrites the other. The loader
only looks at folders named by a number that hold a metadata.json: temporary folders, a crashed
save and anything a person leaves in the folder are ignored.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.paths import models_dir

METADATA_FILE = "metadata.json"
ACTIVE_FILE = "ACTIVE"
TEMP_PREFIX = ".tmp-"
LOCK_FILE = ".training.lock"
PROMOTED, REJECTED = "promoted", "rejected"  # the promotion gate's decisions (app/promotion.py)


class ModelNotFound(LookupError):
    """No such model or version in the store."""


class CorruptModel(RuntimeError):
    """A stored model whose file does not match the sha256 in its metadata."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json_atomically(path: Path, payload: Any) -> None:
    temp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
    temp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(temp, path)


def is_promoted(metadata: dict[str, Any]) -> bool:
    """Whether the promotion gate let a version serve; versions published before the gate existed (no
    "gate" entry) count as promoted."""
    return (metadata.get("gate") or {}).get("decision", PROMOTED) == PROMOTED


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Version:
    name: str
    number: int
    path: Path
    metadata: dict[str, Any]

    @property
    def model_file(self) -> Path:
        return self.path / self.metadata["file"]

    @property
    def serving_file(self) -> Path | None:
        """The file made for serving (metadata's `serving_file`), or None for a version without one."""
        name = self.metadata.get("serving_file")
        return self.path / name if name else None


class ModelStore:
    """The versions of one model, e.g. ModelStore("wine")."""

    def __init__(self, name: str, root: Path | None = None) -> None:
        if not name.isidentifier():
            raise ValueError(f"model names are identifiers, got {name!r}")
        self.name = name
        self.root = Path(root) if root is not None else models_dir()
        self.path = self.root / name

    # -- reading -----------------------------------------------------------------------------
    def versions(self) -> list[int]:
        """Numbers of the complete versions, oldest first."""
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return []
        return sorted(
            int(entry.name)
            for entry in entries
            if entry.name.isdigit() and entry.is_dir() and os.path.exists(os.path.join(entry.path, METADATA_FILE))
        )

    def _highest_number(self) -> int:
        """The highest number in use, complete or not, so a publish never collides with a leftover."""
        try:
            return max((int(name) for name in os.listdir(self.path) if name.isdigit()), default=0)
        except FileNotFoundError:
            return 0

    def latest(self) -> int | None:
        numbers = self.versions()
        return numbers[-1] if numbers else None

    def active(self) -> int | None:
        """The version to serve: the one pinned by `activate`, else the newest the promotion gate
        promoted (see is_promoted)."""
        numbers = self.versions()
        try:
            pinned = int((self.path / ACTIVE_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            pinned = None
        if pinned in numbers:
            return pinned
        return next((number for number in reversed(numbers) if self.promoted(number)), None)

    def promoted(self, number: int) -> bool:
        """Whether the gate let this version serve (it may still be served on purpose: `activate`)."""
        try:
            return is_promoted(self.get(number).metadata)
        except (ModelNotFound, ValueError):  # removed meanwhile, or unreadable metadata: never served by default
            return False

    def get(self, number: int) -> Version:
        path = self.path / str(int(number))
        try:
            metadata = json.loads((path / METADATA_FILE).read_text())
        except FileNotFoundError:
            raise ModelNotFound(f"{self.name} has no version {number}") from None
        return Version(self.name, int(number), path, metadata)

    def all_versions(self) -> list[Version]:
        return [self.get(number) for number in self.versions()]

    def load(self, number: int, loader: Callable[[Path], Any]) -> Any:
        """Load a version with `loader(model_file)` after checking the file's sha256."""
        version = self.get(number)
        expected = version.metadata.get("sha256")
        actual = sha256_of(version.model_file)
        if actual != expected:
            raise CorruptModel(f"{self.name} version {number}: sha256 {actual} != metadata's {expected}")
        return loader(version.model_file)

    def load_serving(self, number: int, loader: Callable[[Path], Any]) -> Any:
        """Load a version's serving file with `loader(path)` after checking its sha256."""
        version = self.get(number)
        if version.serving_file is None:
            raise ModelNotFound(f"{self.name} version {number} has no serving file yet")
        expected = version.metadata.get("serving_sha256")
        actual = sha256_of(version.serving_file)
        if actual != expected:
            raise CorruptModel(f"{self.name} version {number}: serving file sha256 {actual} != metadata's {expected}")
        return loader(version.serving_file)

    def servable(self) -> list[int]:
        """Numbers of the versions that have a serving file, oldest first."""
        return [version.number for version in self.all_versions() if version.serving_file is not None]

    def newest_servable(self, below: int | None = None) -> int | None:
        numbers = [number for number in self.servable() if below is None or number < below]
        return numbers[-1] if numbers else None

    def add_serving_file(self, number: int, save: Callable[[Path], str], metadata: dict[str, Any]) -> Version:
        """Give an existing version a serving file: `save(folder)` writes it into an empty temporary
        folder and returns its name; it is moved beside the model, then the metadata names it (so a
        reader never sees a metadata entry without its file)."""
        version = self.get(number)
        temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.path))
        try:
            file_name = save(temp)
            _fsync_file(temp / file_name)
            os.replace(temp / file_name, version.path / file_name)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        updated = {
            **version.metadata,
            **metadata,
            "serving_file": file_name,
            "serving_sha256": sha256_of(version.path / file_name),
        }
        _write_json_atomically(version.path / METADATA_FILE, updated)
        return self.get(number)

    def load_newest_loadable(
        self, loader: Callable[[Path], Any], below: int | None = None, load: Callable[..., Any] | None = None
    ) -> tuple[int, Any]:
        """(number, model) of the newest version, below `below` if given, that loads: what a service
        that has nothing to serve yet falls back to when the version it should serve is corrupt.

        Every version goes through `load` (sha256 first); one that fails for any reason is skipped,
        so a tampered or unreadable newest version never leaves a starting service with nothing.
        `load=store.load_serving` reads the serving files instead.
        """
        load = load or self.load
        for number in reversed(self.versions()):
            if (below is not None and number >= below) or not self.promoted(number):
                continue  # a version the gate rejected never serves by accident
            try:
                return number, load(number, loader)
            except Exception:  # corrupt, or refused by the loader (e.g. untrusted types): try an older one
                continue
        raise ModelNotFound(f"{self.name} has no loadable version" + (f" below {below}" if below else ""))

    # -- writing -----------------------------------------------------------------------------
    def publish(
        self, save: Callable[[Path], str], metadata: dict[str, Any], serving_file: str | None = None
    ) -> Version:
        """Write a new version: `save(folder)` writes the model into `folder` and returns its file name.
        With `serving_file`, save also writes that file (made for serving) and its sha256 is recorded.

        Returns the published version, numbered one past the newest at the moment of the rename.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self.path))
        try:
            file_name = save(temp)
            model_file = temp / file_name
            _fsync_file(model_file)
            if serving_file is not None:
                _fsync_file(temp / serving_file)
                metadata = {**metadata, "serving_file": serving_file, "serving_sha256": sha256_of(temp / serving_file)}
            metadata = {
                **metadata,
                "name": self.name,
                "file": file_name,
                "sha256": sha256_of(model_file),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            while True:
                number = self._highest_number() + 1
                _write_json_atomically(temp / METADATA_FILE, {**metadata, "version": number})
                try:
                    os.rename(temp, self.path / str(number))
                except OSError:  # another process took this number first: take the next one
                    if (self.path / str(number)).exists():
                        continue
                    raise
                break
            _fsync_dir(self.path)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        # A promoted version takes over from a pinned one: publishing it is a decision to serve it.
        # A rejected one is stored only: what serves stays as it was.
        if is_promoted(metadata):
            (self.path / ACTIVE_FILE).unlink(missing_ok=True)
        return self.get(number)

    def training_lock(self, timeout: float = -1):
        """A lock on this model across threads and processes: hold it from loading the base to
        publishing, so two trainings never fine-tune the same version (filelock's FileLock; flock
        locks are released by the kernel when a process dies, so a crash never leaves it held)."""
        from filelock import FileLock

        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(self.path / LOCK_FILE, timeout=timeout)

    def activate(self, number: int) -> Version:
        version = self.get(number)
        _write_json_atomically(self.path / ACTIVE_FILE, number)
        return version

    def clean_temporary(self, older_than: float = 3600.0) -> list[str]:
        """Remove what crashed saves left behind (temporary folders older than `older_than` s)."""
        removed: list[str] = []
        if not self.path.exists():
            return removed
        now = time.time()
        for entry in self.path.iterdir():
            if entry.name.startswith(TEMP_PREFIX) and now - entry.stat().st_mtime > older_than:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                removed.append(entry.name)
        return removed
