"""The model store in S3-compatible object storage (MinIO, Cloudflare R2, AWS S3), with boto3.

    s3://<bucket>/<prefix>/<name>/uploads/<upload id>/<file>   a version's files, uploaded first
    s3://<bucket>/<prefix>/<name>/versions/<number>.json       its manifest, written last: the version exists
    s3://<bucket>/<prefix>/<name>/ACTIVE                       {"version": n or null, "latest": n}: the pin
    s3://<bucket>/<prefix>/<name>/training-lease              the training lock (app/storage/lease.py)

There is no rename in object storage, so a version is made whole by its manifest:
- **Files first, under a unique upload prefix.** A publisher uploads its files under a fresh upload id
  (a uuid) that no one else writes. Nothing lists uploads: until a manifest names them they are invisible.
- **The manifest last, with a conditional put.** The manifest is the version's metadata (as a local
  store's metadata.json, with every file's sha256) plus the upload id. It is put at the next number with
  `If-None-Match: *`, which the store refuses (412 PreconditionFailed) when that number exists: two
  publishers can never claim one number, and the loser simply tries the next number with the same
  manifest (its files stay where they are, so nothing is uploaded twice). Readers list only manifests,
  so they never see half a version.
- **The ACTIVE pin is compare-and-swap on its ETag** (`If-Match`, or `If-None-Match: *` while absent):
  each writer reads the pin, decides, and writes only if nobody wrote in between, else reads again and
  decides again. A pin records the newest version when it was made; a promoted publication clears only
  a pin made before it existed, so a rollback made after a version appeared is never undone by that
  version's publisher, however the two interleave.
- **Adding a serving file to an old version** uploads it into the version's upload prefix, then
  rewrites the manifest with `If-Match` on the ETag it read (a concurrent change makes it read again);
  every later change of a version's metadata (`update_metadata`) is the same compare-and-swap.
- **Tidying up** (`clean_temporary`): objects under uploads/ that no manifest names and that are older
  than the given age are deleted; a publisher killed mid-upload leaves only such objects. Trainers call
  it holding the training lock, with age 0, so no publication is under way.
- **Reads are downloads into a local cache** (`<cache>/<store>/<name>/<upload id>/<file>`): each
  file is fetched once, its sha256 checked against the manifest before it is handed to a loader; a
  cached file that fails the check is fetched again, and if that fails too it is CorruptModel. A
  publisher moves its own files into the cache, so it never downloads what it just wrote.
- **A worker's poll is one look** (`one_look`): inside it a thread lists the manifests once, and reads a
  manifest only when its ETag in that listing differs from the copy it keeps; most polls change
  nothing, so an idle worker asks the store for one listing and the pin per model. Outside a look every
  read goes to the store (a writer never decides on a kept copy).

Every failure to reach the store raises StoreUnavailable (app/storage/s3_client.py).
"""

import copy
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.paths import models_cache_dir
from app.storage.checksums import check_sha256
from app.storage.folder import TEMP_PREFIX, remove_old_temporaries, temporary_folder
from app.storage.lease import Lease
from app.storage.s3_client import endpoint_of, error_code, reaching, s3_client
from app.storage.store_errors import CorruptModel, ModelNotFound

MANIFEST = re.compile(r"(0|[1-9][0-9]*)\.json")  # "7.json"; never "07.json" or "notes.json"
CONFLICTS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
MISSING = {"NoSuchKey", "404", "NotFound"}
LEASE_TTL = 30.0  # seconds a training lease lasts without renewal (renewed every third of it)


def split_url(url: str) -> tuple[str, str]:
    """("bucket", "prefix/") of s3://bucket/prefix (the prefix "" or ending with one slash)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"an object store is named s3://bucket/prefix, got {url!r}")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


class BucketBackend:
    """One model's versions under `s3://bucket/prefix/<name>/`."""

    def __init__(self, url: str, name: str, cache: Path | None = None, lease_ttl: float | None = None) -> None:
        self.bucket, prefix = split_url(url)
        self.name = name
        self.keys = f"{prefix}{name}/"
        self.location = f"s3://{self.bucket}/{self.keys}"
        self.client = s3_client()
        self.lease_ttl = lease_ttl or LEASE_TTL
        # One cache folder per store (endpoint, bucket and prefix), so two stores never share files by name.
        store_id = sha256(f"{endpoint_of(self.client)} {self.bucket} {prefix}".encode()).hexdigest()[:16]
        self.path = Path(cache or models_cache_dir()) / store_id / name
        self._look = threading.local()  # this thread's listing while in one_look(), else none
        self._manifests: dict[int, tuple[str, dict[str, Any]]] = {}  # number: (ETag, manifest) last read

    # -- S3 calls, each turning a failure to reach the store into StoreUnavailable ---------------
    def _call(self, operation: str, **arguments: Any) -> Any:
        with reaching(self.location, self.client):
            return getattr(self.client, operation)(Bucket=self.bucket, **arguments)

    def _list(self, below: str) -> Iterator[dict[str, Any]]:
        with reaching(self.location, self.client):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=below):
                yield from page.get("Contents", [])

    def _get_json(self, key: str) -> tuple[str, Any] | None:
        """(ETag, the object's JSON, None if it is not JSON) or None when there is no such object."""
        from botocore.exceptions import ClientError

        try:
            answer = self._call("get_object", Key=key)
            with reaching(self.location, self.client):
                body = answer["Body"].read()
        except ClientError as error:
            if error_code(error) in MISSING:
                return None
            raise
        try:
            return answer["ETag"], json.loads(body)
        except ValueError:  # not JSON (someone else's object): there, but unreadable
            return answer["ETag"], None

    def _put_if(self, key: str, body: bytes, etag: str | None) -> str | None:
        """Put `body` at `key` only if the object is still the one with `etag` (None: only if there is
        none). The new object's ETag, or None when someone else wrote first."""
        from botocore.exceptions import ClientError

        condition = {"IfMatch": etag} if etag is not None else {"IfNoneMatch": "*"}
        try:
            answer = self._call("put_object", Key=key, Body=body, ContentType="application/json", **condition)
        except ClientError as error:
            if error_code(error) not in CONFLICTS | MISSING:  # MISSING: If-Match on an object deleted meanwhile
                raise
            # botocore retries a put whose answer was lost: its retry is refused by the put itself.
            # What we meant to write, found there, is ours (manifests and leases are unique).
            found = self._get_json(key)
            return found[0] if found is not None and found[1] == json.loads(body) else None
        return answer["ETag"]

    def _manifest_key(self, number: int) -> str:
        return f"{self.keys}versions/{int(number)}.json"

    def _upload_key(self, upload: str, file_name: str) -> str:
        return f"{self.keys}uploads/{upload}/{file_name}"

    # -- reading -----------------------------------------------------------------------------
    @contextmanager
    def one_look(self) -> Iterator[None]:
        """Read the store as of one listing for the block (see the module's docstring): this thread's
        version numbers come from one listing (taken at its first read), and a manifest whose ETag there
        matches the copy last read is not read again. What the block reads is as fresh as its listing."""
        if hasattr(self._look, "listing"):  # already in one
            yield
            return
        self._look.listing = None
        try:
            yield
        finally:
            del self._look.listing

    def _listed_manifests(self) -> dict[int, str]:
        """{number: ETag} of every manifest (in a look: its one listing)."""
        if (listed := getattr(self._look, "listing", None)) is not None:
            return listed
        below = f"{self.keys}versions/"
        listed = {}
        for entry in self._list(below):
            match = MANIFEST.fullmatch(entry["Key"][len(below) :])
            if match:
                listed[int(match.group(1))] = entry["ETag"]
        if hasattr(self._look, "listing"):
            self._look.listing = listed
        for gone in self._manifests.keys() - listed.keys():
            self._manifests.pop(gone, None)
        return listed

    def numbers(self) -> list[int]:
        return sorted(self._listed_manifests())

    def metadata(self, number: int) -> dict[str, Any]:
        listed = self._listed_manifests() if hasattr(self._look, "listing") else None
        kept = self._manifests.get(number)
        if listed is not None and kept is not None and listed.get(number) == kept[0]:
            return copy.deepcopy(kept[1])  # unchanged since it was read
        found = self._get_json(self._manifest_key(number))
        if found is None:
            raise ModelNotFound(f"{self.name} has no version {number}")
        manifest = found[1]
        if not isinstance(manifest, dict) or not isinstance(manifest.get("upload"), str):
            raise ValueError(f"{self.location}versions/{number}.json is not a manifest (it names no upload)")
        self._manifests[number] = (found[0], copy.deepcopy(manifest))
        return manifest

    def version_path(self, number: int, metadata: dict[str, Any]) -> Path:
        return self.path / metadata["upload"]

    def checked_file(self, path: Path, expected: str | None, what: str) -> Path:
        """The cached copy of a version's file (`path`, in the cache), fetched when it is missing or
        does not match `expected`; CorruptModel when the stored object does not match either."""
        if path.exists():
            try:
                return check_sha256(path, expected, what)
            except CorruptModel:
                pass  # damaged in the cache (or a partial copy someone left): fetch it again
        path.parent.mkdir(parents=True, exist_ok=True)
        download = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}-{path.name}")
        try:
            answer = self._call("get_object", Key=self._upload_key(path.parent.name, path.name))
            with reaching(self.location, self.client), open(download, "wb") as file:
                for chunk in answer["Body"].iter_chunks(1 << 20):
                    file.write(chunk)
            check_sha256(download, expected, what)
            os.replace(download, path)  # whole or not at all, for every process sharing the cache
        finally:
            download.unlink(missing_ok=True)
        return path

    def _pointer(self) -> tuple[str | None, dict[str, Any]]:
        found = self._get_json(f"{self.keys}ACTIVE")
        return (None, {}) if found is None else (found[0], found[1] if isinstance(found[1], dict) else {})

    def pinned(self) -> int | None:
        version = self._pointer()[1].get("version")
        return version if isinstance(version, int) else None

    # -- writing -----------------------------------------------------------------------------
    def staging(self):
        """An empty local folder in the cache (so published files move into the cache); removed after."""
        return temporary_folder(self.path)

    def commit(self, folder: Path, files: list[str], metadata: dict[str, Any]) -> int:
        """Upload the files under a new upload id, then claim the next number with the manifest."""
        upload = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex}"
        for file_name in files:
            with open(folder / file_name, "rb") as file:
                self._call("put_object", Key=self._upload_key(upload, file_name), Body=file)
        number = max(self.numbers(), default=0) + 1
        while True:
            manifest = {**metadata, "version": number, "upload": upload}
            body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
            if self._put_if(self._manifest_key(number), body, None):
                break
            number = max(max(self.numbers(), default=0), number) + 1  # taken: past every number now in use
        self._keep(folder, files, self.path / upload)
        return number

    def _keep(self, folder: Path, files: list[str], cached: Path) -> None:
        """Move files this process uploaded into the cache (a later load checks them like any other)."""
        cached.mkdir(parents=True, exist_ok=True)
        for file_name in files:
            os.replace(folder / file_name, cached / file_name)

    def _swap(self, key: str, change: Callable[[str | None, Any], Any]) -> Any:
        """Compare-and-swap on `key`'s ETag: `change(etag, current)` gives the new JSON (None: leave
        it); if another writer got in between, read again and decide again. Returns what was written."""
        while True:
            found = self._get_json(key)
            etag, current = found if found is not None else (None, None)
            new = change(etag, current)
            if new is None:
                return None
            if self._put_if(key, (json.dumps(new, sort_keys=True) + "\n").encode(), etag):
                return new

    def add_file(self, number: int, folder: Path, file_name: str) -> None:
        """Upload a file into the version's upload prefix (its manifest names it afterwards)."""
        upload = self.metadata(number)["upload"]
        with open(folder / file_name, "rb") as file:
            self._call("put_object", Key=self._upload_key(upload, file_name), Body=file)
        self._keep(folder, [file_name], self.path / upload)

    def update_metadata(
        self, number: int, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Rewrite the manifest as `change(manifest)` says (None: leave it) with `If-Match` on the ETag
        read; another writer in between makes it read and change again. Each rewrite carries a fresh
        `revision`: two writers who made the same change from the same manifest write different bodies,
        so a refused put is never taken for our own retried one (see `_put_if`). Returns what was written."""

        def changed(etag, manifest):
            if manifest is None:
                raise ModelNotFound(f"{self.name} has no version {number}")
            new = change(manifest)
            return None if new is None else {**new, "revision": uuid.uuid4().hex}

        return self._swap(self._manifest_key(number), changed)

    def remove(self, number: int) -> None:
        """The manifest first (the version is gone for every reader), then its uploaded objects and its
        cached copy. A remover that dies between leaves objects no manifest names: the tidy-up's."""
        upload = self.metadata(number)["upload"]
        self._call("delete_object", Key=self._manifest_key(number))
        keys = [{"Key": entry["Key"]} for entry in self._list(f"{self.keys}uploads/{upload}/")]
        if keys:
            self._call("delete_objects", Delete={"Objects": keys, "Quiet": True})
        shutil.rmtree(self.path / upload, ignore_errors=True)

    def pin(self, number: int) -> None:
        latest = max(self.numbers(), default=number)
        self._swap(f"{self.keys}ACTIVE", lambda etag, current: {"version": number, "latest": latest})

    def unpin_for(self, number: int) -> None:
        """Clear a pin made before version `number` existed (a pin made since is a newer decision)."""

        def clear(etag, current):
            current = current if isinstance(current, dict) else {}
            if current.get("version") is None or (current.get("latest") or 0) >= number:
                return None
            return {"version": None, "latest": number}

        self._swap(f"{self.keys}ACTIVE", clear)

    def training_lock(self, timeout: float = -1) -> Lease:
        return Lease(self, f"{self.keys}training-lease", ttl=self.lease_ttl, timeout=timeout)

    def clean_temporary(self, older_than: float) -> list[str]:
        """Delete uploads no manifest names (older than `older_than` s) and local staging leftovers."""
        named = set()
        for number in self.numbers():
            manifest = self.metadata(number)
            for file_name in filter(None, (manifest.get("file"), manifest.get("serving_file"))):
                named.add(self._upload_key(manifest["upload"], file_name))
        now = time.time()
        orphans = [
            entry["Key"]
            for entry in self._list(f"{self.keys}uploads/")
            if entry["Key"] not in named and now - entry["LastModified"].timestamp() > older_than
        ]
        for start in range(0, len(orphans), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": key} for key in orphans[start : start + 1000]]
            self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})
        remove_old_temporaries(self.path, older_than)  # this machine's staging leftovers, in the cache
        return [key[len(self.keys) :] for key in orphans]
