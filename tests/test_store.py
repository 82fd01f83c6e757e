"""app/store.py: numbered versions published whole, junk ignored, checked loads, one trainer at a time.

Every behaviour that both backends promise runs against both (`store` is parametrised: a local
folder, and a bucket on moto's S3 server); what only a folder's layout shows stays folder-only. The
bucket's own guarantees (the manifest, the number claim, the ACTIVE compare-and-swap, the lease, the
cache, an unreachable store) are in tests/test_store_bucket.py.
"""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from filelock import Timeout

from app.paths import PROJECT_ROOT
from app.store import TEMP_PREFIX, CorruptModel, ModelNotFound, ModelStore


def saver(content: bytes):
    def save(folder):
        (folder / "model.bin").write_bytes(content)
        return "model.bin"

    return save


def read(path):
    return path.read_bytes()


@pytest.fixture(params=["folder", pytest.param("bucket", marks=pytest.mark.slow)])
def store(request, tmp_path):
    if request.param == "folder":
        return ModelStore("digits", root=tmp_path)
    return ModelStore("digits", root=request.getfixturevalue("bucket_url"), cache=tmp_path / "cache")


@pytest.fixture
def folder_store(tmp_path):
    return ModelStore("digits", root=tmp_path)


def in_bucket(store) -> bool:
    return isinstance(store.root, str)


def stored_names(store) -> list[str]:
    """Every name the store wrote: files under a folder, keys under a bucket's prefix."""
    if not in_bucket(store):
        return [str(path.relative_to(store.path)) for path in store.path.rglob("*")]
    backend = store.backend
    return [entry["Key"][len(backend.keys) :] for entry in backend._list(backend.keys)]


def stored_metadata(store, number: int) -> dict:
    """A version's metadata as stored (metadata.json, or the bucket's manifest), read around the store."""
    if not in_bucket(store):
        return json.loads((store.path / str(number) / "metadata.json").read_text())
    backend = store.backend
    answer = backend.client.get_object(Bucket=backend.bucket, Key=f"{backend.keys}versions/{number}.json")
    return json.loads(answer["Body"].read())


def tamper(store, number: int, file_name: str, content: bytes) -> None:
    """Change a published file where it is stored (for a bucket: the object, and the publisher's cached copy)."""
    version = store.get(number)
    if in_bucket(store):
        backend = store.backend
        key = f"{backend.keys}uploads/{version.metadata['upload']}/{file_name}"
        backend.client.put_object(Bucket=backend.bucket, Key=key, Body=content)
    (version.path / file_name).parent.mkdir(parents=True, exist_ok=True)
    (version.path / file_name).write_bytes(content)


def remove_version(store, number: int) -> None:
    if in_bucket(store):
        backend = store.backend
        backend.client.delete_object(Bucket=backend.bucket, Key=f"{backend.keys}versions/{number}.json")
    else:
        (store.path / str(number) / "metadata.json").unlink()


def leftovers(store) -> list[str]:
    """Temporary files of a save: in the folder, or in the bucket's cache and uploads no manifest names."""
    local = (
        [entry.name for entry in store.path.iterdir() if entry.name.startswith(TEMP_PREFIX)]
        if store.path.exists()
        else []
    )
    if not in_bucket(store):
        return local
    named = {
        f"uploads/{version.metadata['upload']}/{name}"
        for version in store.all_versions()
        for name in filter(None, (version.metadata["file"], version.metadata.get("serving_file")))
    }
    return local + [name for name in stored_names(store) if name.startswith("uploads/") and name not in named]


def test_an_empty_store_has_no_versions(store):
    assert store.versions() == [] and store.latest() is None and store.active() is None
    with pytest.raises(ModelNotFound):
        store.get(1)


def test_publish_writes_numbered_versions_with_checked_metadata(store):
    first = store.publish(saver(b"one"), {"parent": None})
    second = store.publish(saver(b"two"), {"parent": first.number})
    assert (first.number, second.number) == (1, 2)
    assert store.versions() == [1, 2] and store.latest() == 2
    metadata = stored_metadata(store, 2)
    assert metadata["version"] == 2 and metadata["parent"] == 1 and metadata["file"] == "model.bin"
    assert len(metadata["sha256"]) == 64
    assert store.load(1, read) == b"one" and store.load(2, read) == b"two"
    # Numbers, not names with dates: nothing the store writes has a space or a colon in its name.
    assert all(" " not in name and ":" not in name for name in stored_names(store))


def test_versions_sort_as_numbers(store):
    for n in range(11):
        store.publish(saver(bytes([n])), {})
    assert store.versions() == list(range(1, 12)) and store.latest() == 11
    assert store.load(11, read) == bytes([10])


def test_junk_temporary_folders_and_half_written_versions_are_ignored(folder_store):
    store = folder_store
    store.publish(saver(b"one"), {})
    (store.path / "notes").mkdir()
    (store.path / "model_2024-01-01 12:00:00.keras").write_bytes(b"the workshop's naming")
    (store.path / f"{TEMP_PREFIX}crashed").mkdir()
    (store.path / f"{TEMP_PREFIX}crashed" / "metadata.json").write_text("{}")
    (store.path / "2").mkdir()  # a crash between mkdir and metadata: not a complete version
    (store.path / "3").write_text("a file, not a folder")
    assert store.versions() == [1] and store.latest() == 1
    # The next version takes a number no leftover uses, so it never lands in a half-written folder.
    assert store.publish(saver(b"next"), {}).number == 4
    assert store.versions() == [1, 4]


def test_a_failed_save_leaves_nothing_behind(store):
    def crash(folder):
        (folder / "model.bin").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        store.publish(crash, {})
    assert store.versions() == []
    assert leftovers(store) == [] and stored_names(store) == []


def test_a_model_file_that_does_not_match_its_sha256_is_refused(store):
    version = store.publish(saver(b"good"), {})
    tamper(store, version.number, "model.bin", b"tampered")
    with pytest.raises(CorruptModel):
        store.load(version.number, read)


def test_threads_publishing_at_once_get_distinct_numbers(store):
    start = threading.Barrier(8)
    numbers: list[int] = []

    def publish_some(worker: int) -> None:
        start.wait()
        for n in range(5):
            numbers.append(store.publish(saver(f"{worker}-{n}".encode()), {}).number)

    workers = [threading.Thread(target=publish_some, args=(worker,)) for worker in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(numbers) == list(range(1, 41))
    assert store.versions() == list(range(1, 41))
    contents = {store.load(number, read) for number in numbers}
    assert len(contents) == 40  # every publish kept its own model: none overwrote another


PUBLISHER = """
import sys, time
from pathlib import Path
from app.store import ModelStore
root, worker, go, cache = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]) / "cache-of-publisher"
while not go.exists():
    time.sleep(0.005)
store = ModelStore("digits", root=root, cache=cache / worker)
for n in range(10):
    def save(folder, n=n):
        (folder / "model.bin").write_text(f"{worker}-{n}")
        return "model.bin"
    print(store.publish(save, {}).number, flush=True)
"""


def test_processes_publishing_at_once_get_distinct_numbers(store, tmp_path):
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(store.root), str(worker), str(go), str(store.path.parent.parent)],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for worker in range(3)
    ]
    go.touch()
    numbers = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        numbers += [int(line) for line in out.split()]
    assert sorted(numbers) == list(range(1, 31))
    assert len({store.load(number, read) for number in numbers}) == 30


def test_the_training_lock_lets_one_thread_at_a_time_in(store):
    held, release = threading.Event(), threading.Event()

    def trainer() -> None:
        with store.training_lock():
            held.set()
            release.wait(60)

    thread = threading.Thread(target=trainer)
    thread.start()
    try:
        assert held.wait(60)
        with pytest.raises(Timeout):
            with store.training_lock(timeout=0):
                pass
    finally:
        release.set()
        thread.join()
    with store.training_lock(timeout=0):  # free again once the holder is done
        pass


HOLDER = """
import sys
from app.store import ModelStore
store = ModelStore("digits", root=sys.argv[1], cache=sys.argv[2])
store.backend.lease_ttl = float(sys.argv[3])  # a bucket's lease: renewed every third of it
with store.training_lock():
    print("held", flush=True)
    sys.stdin.readline()
"""
LEASE_TTL = 1.0  # seconds: short, so a dead holder's lease is taken over soon


def test_the_training_lock_holds_across_processes_and_dies_with_its_holder(store, tmp_path):
    store.backend.lease_ttl = LEASE_TTL
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.root), str(tmp_path / "holder-cache"), str(LEASE_TTL)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Timeout):
            with store.training_lock(timeout=0):
                pass
        if in_bucket(store):  # a live holder renews its lease: still held well past its ttl
            with pytest.raises(Timeout):
                store.training_lock(timeout=4 * LEASE_TTL).acquire()
    finally:
        holder.kill()  # no clean release: the kernel frees a folder's lock; a bucket's lease goes stale
        holder.wait(60)
    # A folder's lock is free at once; a bucket's once its lease has not been renewed for its ttl.
    with store.training_lock(timeout=0 if not in_bucket(store) else 60):
        pass


def test_activate_pins_a_version_until_the_next_publish(store):
    for content in (b"one", b"two"):
        store.publish(saver(content), {})
    assert store.active() == 2
    store.activate(1)
    assert store.active() == 1 and store.latest() == 2
    with pytest.raises(ModelNotFound):
        store.activate(7)
    assert store.active() == 1
    assert store.publish(saver(b"three"), {}).number == 3
    assert store.active() == 3  # publishing a version is a decision to serve it


def test_a_pin_on_a_removed_version_falls_back_to_the_newest(store):
    for content in (b"one", b"two"):
        store.publish(saver(content), {})
    store.activate(1)
    remove_version(store, 1)
    assert store.active() == 2


def gate(decision: str) -> dict:
    return {"gate": {"decision": decision, "rule": None if decision == "promoted" else "margin"}}


def test_a_rejected_version_is_stored_but_never_served_by_default(store):
    store.publish(saver(b"one"), gate("promoted"))
    store.publish(saver(b"two"), gate("promoted"))
    rejected = store.publish(saver(b"three"), gate("rejected"))
    assert store.versions() == [1, 2, 3] and store.latest() == 3
    assert store.active() == 2 and not store.promoted(3) and store.load(3, read) == b"three"
    # A rollback stays pinned through a rejected publication; a promoted one takes over.
    store.activate(1)
    store.publish(saver(b"four"), gate("rejected"))
    assert store.active() == 1
    assert store.publish(saver(b"five"), gate("promoted")).number == 5 and store.active() == 5
    # Serving a rejected version on purpose (the service's forced activation) is a pin like any other.
    store.activate(rejected.number)
    assert store.active() == 3


def test_a_challenger_is_stored_but_never_served_by_default(store):
    store.publish(saver(b"one"), gate("promoted"))
    challenger = store.publish(saver(b"two"), gate("challenger"))
    assert store.active() == 1 and not store.promoted(challenger.number)
    assert store.load_newest_loadable(read) == (1, b"one")
    store.activate(1)
    store.publish(saver(b"three"), gate("challenger"))
    assert store.active() == 1  # a challenger's publication never lifts a pin either


def test_a_version_s_metadata_is_rewritten_whole_and_no_concurrent_update_is_lost(store):
    store.publish(with_serving_file(b"one", b"onnx"), {"gate": {"decision": "challenger"}}, "model.onnx")
    store.publish(saver(b"two"), {})
    version = store.update_metadata(1, lambda metadata: {**metadata, "gate": {"decision": "promoted"}})
    assert version.metadata["gate"] == {"decision": "promoted"} and stored_metadata(store, 1)["gate"]["decision"]
    assert store.load(1, read) == b"one" and store.load_serving(1, read) == b"onnx"
    assert store.get(2).metadata.get("gate") is None

    def count(metadata):
        time.sleep(0.001)  # widen the window between reading and writing
        return {**metadata, "count": metadata.get("count", 0) + 1}

    def add_five():
        for _ in range(5):
            ModelStore("digits", root=store.root, cache=store.path.parent.parent).update_metadata(1, count)

    threads = [threading.Thread(target=add_five) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.get(1).metadata["count"] == 20 and stored_metadata(store, 1)["count"] == 20
    for moved in ("sha256", "file", "serving_file", "version"):
        with pytest.raises(ValueError, match=f"cannot change {moved}"):
            store.update_metadata(1, lambda metadata, key=moved: {**metadata, key: "elsewhere"})
    with pytest.raises(ModelNotFound):
        store.update_metadata(7, count)
    assert store.load(1, read) == b"one" and leftovers(store) == []


def test_a_removed_version_disappears_whole_and_its_number_is_never_given_again(store):
    for content in (b"one", b"two", b"three", b"four"):
        store.publish(with_serving_file(content, content + b".onnx"), {}, "model.onnx")
    store.activate(2)
    with pytest.raises(ValueError, match="serves"):
        store.remove(2)
    with pytest.raises(ValueError, match="newest"):
        store.remove(4)
    with pytest.raises(ModelNotFound):
        store.remove(9)
    store.remove(1)
    store.remove(3)
    assert store.versions() == [2, 4] and store.active() == 2
    with pytest.raises(ModelNotFound):
        store.get(3)
    assert not [name for name in stored_names(store) if name.startswith(("1/", "3/")) or "three" in name]
    if in_bucket(store):
        named = {store.get(number).metadata["upload"] for number in (2, 4)}
        assert {name.split("/")[1] for name in stored_names(store) if name.startswith("uploads/")} == named
    assert store.publish(saver(b"five"), {}).number == 5
    assert store.load(2, read) == b"two" and store.load_serving(4, read) == b"four.onnx"


def test_a_store_whose_versions_are_all_rejected_serves_nothing(store):
    store.publish(saver(b"one"), gate("rejected"))
    assert store.active() is None
    with pytest.raises(ModelNotFound):
        store.load_newest_loadable(read)


def test_versions_from_before_the_gate_count_as_promoted(store):
    for content in (b"one", b"two"):
        store.publish(saver(content), {})  # no "gate" entry: a store made before the gate existed
    assert store.active() == 2
    store.publish(saver(b"three"), gate("rejected"))
    assert store.active() == 2
    assert store.load_newest_loadable(read) == (2, b"two")
    assert store.load_newest_loadable(read, below=2) == (1, b"one")


def test_clean_temporary_removes_only_old_leftovers(folder_store):
    store = folder_store
    store.path.mkdir(parents=True)
    old, new = store.path / f"{TEMP_PREFIX}old", store.path / f"{TEMP_PREFIX}new"
    old.mkdir()
    new.mkdir()
    an_hour_ago = time.time() - 7200
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert store.clean_temporary() == [old.name]
    assert not old.exists() and new.exists()


def test_model_names_must_be_identifiers(tmp_path):
    with pytest.raises(ValueError):
        ModelStore("../elsewhere", root=tmp_path)


def with_serving_file(content: bytes, serving: bytes):
    def save(folder):
        (folder / "model.onnx").write_bytes(serving)
        return saver(content)(folder)

    return save


def test_a_serving_file_is_recorded_checked_and_listed(store):
    store.publish(saver(b"old"), {})  # a version from before serving files
    version = store.publish(with_serving_file(b"new", b"onnx"), {}, serving_file="model.onnx")
    assert version.metadata["serving_file"] == "model.onnx" and store.load_serving(2, read) == b"onnx"
    assert store.get(1).serving_file is None
    assert store.servable() == [2] and store.newest_servable() == 2 and store.newest_servable(below=2) is None
    assert store.load_serving(2, read) == b"onnx"
    with pytest.raises(ModelNotFound, match="no serving file"):
        store.load_serving(1, read)
    tamper(store, 2, "model.onnx", b"tampered")
    with pytest.raises(CorruptModel, match="serving file sha256"):
        store.load_serving(2, read)


def test_an_old_version_gets_its_serving_file_added(store):
    store.publish(saver(b"old"), {"metrics": {"accuracy": 0.9}})

    def save_serving(folder):
        (folder / "model.onnx").write_bytes(b"exported later")
        return "model.onnx"

    version = store.add_serving_file(1, save_serving, {"serving_runtime": "onnxruntime"})
    assert version.metadata["metrics"] == {"accuracy": 0.9} and version.metadata["serving_runtime"] == "onnxruntime"
    assert store.load_serving(1, read) == b"exported later" and store.load(1, read) == b"old"
    assert stored_metadata(store, 1)["serving_file"] == "model.onnx"
    assert leftovers(store) == []


def test_a_serving_file_that_save_did_not_write_publishes_nothing(store):
    with pytest.raises(FileNotFoundError):
        store.publish(saver(b"model"), {}, serving_file="model.onnx")
    assert store.versions() == [] and stored_names(store) == [] and leftovers(store) == []


def test_a_versions_metadata_changes_after_publication_only_where_asked(store):
    store.publish(saver(b"one"), {"gate": {"decision": "challenger"}, "metrics": {"accuracy": 0.9}})
    changed = store.update_metadata(
        1, lambda current: {**current, "shadow": {"outcome": "dropped", "was": current["gate"]}}
    )
    assert changed is not None and changed.metadata["shadow"] == {
        "outcome": "dropped",
        "was": {"decision": "challenger"},
    }
    assert store.get(1).metadata == changed.metadata == stored_metadata(store, 1)
    assert store.get(1).metadata["metrics"] == {"accuracy": 0.9} and store.load(1, read) == b"one"
    assert store.update_metadata(1, lambda current: None) is None  # declined: nothing written
    assert store.get(1).metadata == changed.metadata
    with pytest.raises(ValueError, match="cannot change sha256"):
        store.update_metadata(1, lambda current: {**current, "sha256": "0" * 64})
    assert store.load(1, read) == b"one" and store.get(1).metadata == changed.metadata
    with pytest.raises(ModelNotFound):
        store.update_metadata(2, lambda current: {**current, "x": 1})
    assert leftovers(store) == []


def test_a_challenger_promoted_from_shadow_serves_and_a_dropped_one_never(store):
    store.publish(saver(b"one"), gate("promoted"))
    store.publish(saver(b"two"), gate("challenger"))
    store.publish(saver(b"three"), gate("challenger"))
    assert store.active() == 1  # a challenger never serves by default
    store.update_metadata(3, lambda current: {**current, "shadow": {"outcome": "dropped"}})
    assert store.active() == 1 and not store.promoted(3)
    store.update_metadata(2, lambda current: {**current, "shadow": {"outcome": "promoted"}})
    assert store.active() == 2 and store.promoted(2)
