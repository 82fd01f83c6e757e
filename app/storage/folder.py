"""The model store in a local folder (the default), after TF Serving's layout.

    <root>/<name>/<version>/<model file> + metadata.json (+ a serving file, e.g. model.onnx)
    <root>/<name>/ACTIVE          optional: the version to serve instead of the newest promoted one
    <root>/<name>/.metadata.lock  held while a version's metadata is rewritten (a status change)

A version is written complete under a temporary name in the same folder and renamed into place, so a
reader sees either nothing or the whole model. Renaming onto an existing version fails, so two
processes publishing at once get two different numbers and neither overwrites the other. The loader
only looks at folders named by a number that hold a metadata.json: temporary folders, a crashed
save and anything a person leaves in the folder are ignored.
"""

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from app.storage.checksums import check_sha256
from app.storage.store_errors import ModelNotFound

METADATA_FILE = "metadata.json"
ACTIVE_FILE = "ACTIVE"
TEMP_PREFIX = ".tmp-"
LOCK_FILE = ".training.lock"
METADATA_LOCK_FILE = ".metadata.lock"  # held while a version's metadata is read, changed and written


def write_json_atomically(path: Path, payload: Any) -> None:
    temp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
    temp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(temp, path)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def temporary_folder(parent: Path) -> Iterator[Path]:
    """An empty folder named TEMP_PREFIX... in `parent`, removed afterwards whatever happened."""
    parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=parent))
    try:
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def remove_old_temporaries(parent: Path, older_than: float) -> list[str]:
    """Remove what crashed saves left in `parent` (TEMP_PREFIX entries older than `older_than` s)."""
    removed: list[str] = []
    if not parent.exists():
        return removed
    now = time.time()
    for entry in parent.iterdir():
        if entry.name.startswith(TEMP_PREFIX) and now - entry.stat().st_mtime > older_than:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


class FolderBackend:
    """One model's versions in `<root>/<name>/`."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = Path(root)
        self.path = self.root / name
        self.location = str(self.path)

    # -- reading -----------------------------------------------------------------------------
    def numbers(self) -> list[int]:
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

    def metadata(self, number: int) -> dict[str, Any]:
        try:
            return json.loads((self.version_path(number) / METADATA_FILE).read_text())
        except FileNotFoundError:
            raise ModelNotFound(f"{self.path.name} has no version {number}") from None

    def version_path(self, number: int, metadata: dict[str, Any] | None = None) -> Path:
        return self.path / str(int(number))

    def one_look(self):
        """Reading a folder costs no request: nothing to keep (see BucketBackend.one_look)."""
        return nullcontext()

    def checked_file(self, path: Path, expected: str | None, what: str) -> Path:
        return check_sha256(path, expected, what)

    def pinned(self) -> int | None:
        try:
            return int((self.path / ACTIVE_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    # -- writing -----------------------------------------------------------------------------
    def staging(self):
        """An empty temporary folder beside the versions (a rename from it is atomic); removed after."""
        return temporary_folder(self.path)

    def commit(self, folder: Path, files: list[str], metadata: dict[str, Any]) -> int:
        """Rename the staged `folder` into place as the next free number; returns the number."""
        for name in files:
            _fsync_file(folder / name)
        while True:
            number = self._highest_number() + 1
            write_json_atomically(folder / METADATA_FILE, {**metadata, "version": number})
            try:
                os.rename(folder, self.path / str(number))
            except OSError:  # another process took this number first: take the next one
                if (self.path / str(number)).exists():
                    continue
                raise
            break
        _fsync_dir(self.path)
        return number

    def add_file(self, number: int, folder: Path, file_name: str) -> None:
        """Move `folder/file_name` beside the version's model (its metadata names it afterwards, so a
        reader never sees a metadata entry without its file)."""
        _fsync_file(folder / file_name)
        os.replace(folder / file_name, self.version_path(number) / file_name)

    def update_metadata(
        self, number: int, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Read, change and write a version's metadata.json under a lock (so no update is lost); the
        write is a rename, so a reader sees the old file or the new. `change` returning None leaves it
        as it is. Returns what was written."""
        from filelock import FileLock

        with FileLock(self.path / METADATA_LOCK_FILE):
            new = change(self.metadata(number))
            if new is not None:
                write_json_atomically(self.version_path(number) / METADATA_FILE, new)
            return new

    def remove(self, number: int) -> None:
        """metadata.json first (the version is gone for every reader), then its files; the emptied folder
        stays behind, still holding its number."""
        target = self.version_path(number)
        (target / METADATA_FILE).unlink()
        _fsync_dir(target)
        for entry in target.iterdir():
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)

    def pin(self, number: int) -> None:
        write_json_atomically(self.path / ACTIVE_FILE, number)

    def unpin_for(self, number: int) -> None:
        (self.path / ACTIVE_FILE).unlink(missing_ok=True)

    def training_lock(self, timeout: float = -1):
        """filelock's FileLock: flock locks are released by the kernel when a process dies, so a crash
        never leaves it held."""
        from filelock import FileLock

        self.path.mkdir(parents=True, exist_ok=True)
        return FileLock(self.path / LOCK_FILE, timeout=timeout)

    def clean_temporary(self, older_than: float) -> list[str]:
        return remove_old_temporaries(self.path, older_than)
