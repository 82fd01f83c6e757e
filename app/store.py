"""A versioned model store: numbered versions published whole, checked loads, one trainer at a time.

    ModelStore("wine")                               # where WORKSHOP_MODELS_URL, else WORKSHOP_MODELS_DIR, says
    ModelStore("wine", Path("models"))               # a local folder: app/storage/folder.py
    ModelStore("wine", "s3://bucket/prefix")         # S3-compatible object storage: app/storage/bucket.py

This class holds what every backend shares (the metadata and sha256 of each file, which version is
active, the fallback to an intact one); a backend beneath it does the I/O and keeps each publication
whole in its own way (a rename in a folder, a manifest written last with a conditional put in a bucket).
Loaders always get a local file: a bucket's files are downloaded once into a local cache and checked
against the metadata's sha256 before the loader opens them.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.paths import models_location
from app.storage.checksums import sha256_of
from app.storage.folder import ACTIVE_FILE, LOCK_FILE, METADATA_FILE, TEMP_PREFIX, FolderBackend
from app.storage.store_errors import CorruptModel, ModelNotFound, StoreUnavailable

__all__ = [
    "CHALLENGER",
    "DROPPED",
    "PROMOTED",
    "REJECTED",
    "SHADOW",
    "ACTIVE_FILE",
    "LOCK_FILE",
    "METADATA_FILE",
    "TEMP_PREFIX",
    "CorruptModel",
    "ModelNotFound",
    "ModelStore",
    "StoreUnavailable",
    "Version",
    "in_shadow",
    "is_challenger",
    "is_promoted",
    "sha256_of",
]
# The promotion gate's decisions (app/promotion.py): a challenger is stored, never served by default,
# and put in shadow (app/part3/shadow.py) until its live labels or an operator decide.
PROMOTED, REJECTED, CHALLENGER = "promoted", "rejected", "challenger"
SHADOW, DROPPED = "shadow", "dropped"  # a challenger's outcome: metadata["shadow"]["outcome"], PROMOTED or DROPPED
# What the store writes in a version's metadata (its files, their sha256, its number): a caller never
# sets them on publication, and a metadata rewrite (update_metadata) cannot change them.
STORE_OWNED = frozenset(
    {"name", "version", "file", "sha256", "serving_file", "serving_sha256", "created_at", "upload", "revision"}
)


def is_challenger(metadata: dict[str, Any]) -> bool:
    """Whether the gate put this version in shadow (whatever became of it since: `in_shadow`)."""
    return (metadata.get("gate") or {}).get("decision") == CHALLENGER


def in_shadow(metadata: dict[str, Any]) -> bool:
    """A challenger still waiting for its live labels: neither promoted nor dropped since."""
    return is_challenger(metadata) and not (metadata.get(SHADOW) or {}).get("outcome")


def is_promoted(metadata: dict[str, Any]) -> bool:
    """Whether a version may serve: the promotion gate let it (versions published before the gate
    existed, with no "gate" entry, count as promoted), or it was a challenger that its live labels or an
    operator promoted from shadow (app/part3/shadow.py)."""
    if (metadata.get(SHADOW) or {}).get("outcome") == PROMOTED:
        return True
    return (metadata.get("gate") or {}).get("decision", PROMOTED) == PROMOTED


@dataclass(frozen=True)
class Version:
    """One published version. `path` is its folder: in the store itself for a local store, in the
    local download cache for a bucket (its files appear there once loaded, or once published here)."""

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


def is_object_store(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith("s3://")


class ModelStore:
    """The versions of one model, e.g. ModelStore("wine").

    `root` is a folder or an `s3://bucket/prefix` URL (default: app.paths.models_location()); `cache`
    is where a bucket's files are downloaded (default: app.paths.models_cache_dir()); `lease_ttl`, how
    long a bucket's training lease outlives a publisher that stopped renewing it (a folder's lock is
    the operating system's, freed when its holder dies)."""

    def __init__(
        self, name: str, root: Path | str | None = None, cache: Path | None = None, *, lease_ttl: float | None = None
    ) -> None:
        if not name.isidentifier():
            raise ValueError(f"model names are identifiers, got {name!r}")
        self.name = name
        location = root if root is not None else models_location()
        if is_object_store(location):
            from app.storage.bucket import BucketBackend  # boto3 is imported only for a bucket

            self.backend: Any = BucketBackend(str(location), name, cache, lease_ttl)
            self.root: Path | str = str(location)
        else:
            self.backend = FolderBackend(Path(location), name)
            self.root = Path(location)
        # A local store's folder; a bucket's local cache folder for this model.
        self.path: Path = self.backend.path
        self.location: str = self.backend.location  # for messages: a folder, or s3://bucket/prefix/name

    # -- reading -----------------------------------------------------------------------------
    def one_look(self):
        """`with store.one_look():` the reads in the block see the store as of one listing, and a
        bucket's manifests unchanged since they were last read are not read again (a worker's poll)."""
        return self.backend.one_look()

    def versions(self) -> list[int]:
        """Numbers of the complete versions, oldest first."""
        return self.backend.numbers()

    def latest(self) -> int | None:
        numbers = self.versions()
        return numbers[-1] if numbers else None

    def active(self) -> int | None:
        """The version to serve: the one pinned by `activate`, else the newest the promotion gate
        promoted (see is_promoted)."""
        numbers = self.versions()
        pinned = self.backend.pinned()
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
        metadata = self.backend.metadata(int(number))
        return Version(self.name, int(number), self.backend.version_path(int(number), metadata), metadata)

    def all_versions(self) -> list[Version]:
        return [self.get(number) for number in self.versions()]

    def load(self, number: int, loader: Callable[[Path], Any]) -> Any:
        """Load a version with `loader(model_file)` after checking the file's sha256."""
        version = self.get(number)
        path = self.backend.checked_file(
            version.model_file, version.metadata.get("sha256"), f"{self.name} version {number}:"
        )
        return loader(path)

    def load_serving(self, number: int, loader: Callable[[Path], Any]) -> Any:
        """Load a version's serving file with `loader(path)` after checking its sha256."""
        version = self.get(number)
        if version.serving_file is None:
            raise ModelNotFound(f"{self.name} version {number} has no serving file yet")
        path = self.backend.checked_file(
            version.serving_file, version.metadata.get("serving_sha256"), f"{self.name} version {number}: serving file"
        )
        return loader(path)

    def servable(self) -> list[int]:
        """Numbers of the versions that have a serving file, oldest first."""
        return [version.number for version in self.all_versions() if version.serving_file is not None]

    def newest_servable(self, below: int | None = None) -> int | None:
        numbers = [number for number in self.servable() if below is None or number < below]
        return numbers[-1] if numbers else None

    def add_serving_file(self, number: int, save: Callable[[Path], str], metadata: dict[str, Any]) -> Version:
        """Give an existing version a serving file: `save(folder)` writes it into an empty temporary
        folder and returns its name; it is stored beside the model, then the metadata names it (so a
        reader never sees a metadata entry without its file)."""
        self.get(number)  # ModelNotFound before any work
        with self.backend.staging() as temp:
            file_name = save(temp)
            serving = {**metadata, "serving_file": file_name, "serving_sha256": sha256_of(temp / file_name)}
            self.backend.add_file(number, temp, file_name)
            self.backend.update_metadata(number, lambda current: {**current, **serving})
        return self.get(number)

    def update_metadata(self, number: int, change: Callable[[dict[str, Any]], dict[str, Any] | None]) -> Version | None:
        """Rewrite a version's metadata after its publication (e.g. a challenger promoted or dropped):
        `change(current)` returns the new metadata, or None to leave it as it is (then this returns
        None). Atomic in both backends: a reader sees the old metadata or the new, and two writers at
        once never lose an update (a lock beside a folder's versions; a compare-and-swap on the
        manifest's ETag in a bucket, `change` called again with what the other wrote, so it decides on
        what is stored). What the store writes (STORE_OWNED: the files, their sha256) cannot change."""

        def checked(current: dict[str, Any]) -> dict[str, Any] | None:
            new = change(dict(current))
            moved = [key for key in sorted(STORE_OWNED) if new is not None and new.get(key) != current.get(key)]
            if moved:
                raise ValueError(f"{self.name} version {number}: update_metadata cannot change {', '.join(moved)}")
            return new

        if self.backend.update_metadata(int(number), checked) is None:
            return None
        return self.get(number)

    def load_newest_loadable(
        self, loader: Callable[[Path], Any], below: int | None = None, load: Callable[..., Any] | None = None
    ) -> tuple[int, Any]:
        """(number, model) of the newest version, below `below` if given, that loads: what a service
        that has nothing to serve yet falls back to when the version it should serve is corrupt.

        Every version goes through `load` (sha256 first); one that fails for any reason is skipped,
        so a tampered or unreadable newest version never leaves a starting service with nothing.
        `load=store.load_serving` reads the serving files instead. An unreachable store is not a
        corrupt version: StoreUnavailable goes to the caller.
        """
        load = load or self.load
        for number in reversed(self.versions()):
            if (below is not None and number >= below) or not self.promoted(number):
                continue  # a version the gate rejected never serves by accident
            try:
                return number, load(number, loader)
            except StoreUnavailable:
                raise
            except Exception:  # corrupt, or refused by the loader (e.g. untrusted types): try an older one
                continue
        raise ModelNotFound(f"{self.name} has no loadable version" + (f" below {below}" if below else ""))

    # -- writing -----------------------------------------------------------------------------
    def publish(
        self, save: Callable[[Path], str], metadata: dict[str, Any], serving_file: str | None = None
    ) -> Version:
        """Write a new version: `save(folder)` writes the model into `folder` and returns its file name.
        With `serving_file`, save also writes that file (made for serving) and its sha256 is recorded.

        Returns the published version, numbered one past the newest at the moment it became visible.
        """
        with self.backend.staging() as temp:
            file_name = save(temp)
            files = [file_name]
            if serving_file is not None:
                metadata = {**metadata, "serving_file": serving_file, "serving_sha256": sha256_of(temp / serving_file)}
                files.append(serving_file)
            metadata = {
                **metadata,
                "name": self.name,
                "file": file_name,
                "sha256": sha256_of(temp / file_name),
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            number = self.backend.commit(temp, files, metadata)
        # A promoted version takes over from a pinned one: publishing it is a decision to serve it.
        # A rejected one is stored only: what serves stays as it was.
        if is_promoted(metadata):
            self.backend.unpin_for(number)
        return self.get(number)

    def training_lock(self, timeout: float = -1):
        """A lock on this model across threads and processes: hold it from loading the base to
        publishing, so two trainings never fine-tune the same version. A folder's is a FileLock; a
        bucket's a lease (app/storage/lease.py). Both raise filelock.Timeout when `timeout` runs out."""
        return self.backend.training_lock(timeout=timeout)

    def remove(self, number: int) -> None:
        """Delete a stored version (the trainer bounds the versions the gate refused). It disappears for
        readers at once (its metadata.json, or its manifest, goes first), then its files. The version
        that serves and the newest one (whose number would be given again) are never removed."""
        numbers = self.versions()
        if number not in numbers:
            raise ModelNotFound(f"{self.name} has no version {number}")
        if number == self.active():
            raise ValueError(f"{self.name} version {number} serves: it cannot be removed")
        if number == numbers[-1]:
            raise ValueError(f"{self.name} version {number} is the newest: its number would be given again")
        self.backend.remove(int(number))

    def activate(self, number: int) -> Version:
        version = self.get(number)
        self.backend.pin(number)
        return version

    def clean_temporary(self, older_than: float = 3600.0) -> list[str]:
        """Remove what crashed saves left behind (older than `older_than` s), never a published file."""
        return self.backend.clean_temporary(older_than)
