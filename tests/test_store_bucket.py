"""app/storage/bucket.py against a real S3 protocol server (moto's, on loopback): what only a bucket
must do. The behaviours both backends share run against both in tests/test_store.py.

Each test here would fail if: a half-uploaded version were visible; two publishers got one number;
a worker loaded a file whose sha256 differs from the manifest; a stale ACTIVE write overwrote a newer
one; the store lost anything when stopped and started again; an unreachable store raised anything but
StoreUnavailable, or named its credentials.
"""

import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest
from botocore.exceptions import ClientError
from filelock import Timeout

from app.paths import PROJECT_ROOT, models_cache_dir
from app.storage import copy_store
from app.storage.bucket import BucketBackend, split_url
from app.store import CorruptModel, ModelNotFound, ModelStore, StoreUnavailable
from tests.polling import free_port, wait_until
from tests.s3_support import CREDENTIALS, JournaledMotoServer, environment, new_bucket, s3_environment


def saver(content: bytes, serving: bytes | None = None):
    def save(folder):
        (folder / "model.bin").write_bytes(content)
        if serving is not None:
            (folder / "model.onnx").write_bytes(serving)
        return "model.bin"

    return save


def read(path):
    return path.read_bytes()


def publish(store, content: bytes, metadata: dict | None = None):
    return store.publish(saver(content, b"onnx:" + content), metadata or {}, serving_file="model.onnx")


@pytest.fixture
def store(bucket_url, tmp_path):
    """The publisher's store (its own cache)."""
    return ModelStore("digits", root=bucket_url, cache=tmp_path / "publisher-cache")


@pytest.fixture
def worker(bucket_url, tmp_path):
    """Another process's view of the same store: its own, empty cache."""
    return ModelStore("digits", root=bucket_url, cache=tmp_path / "worker-cache")


def keys(store, below: str = "") -> list[str]:
    backend = store.backend
    return sorted(entry["Key"][len(backend.keys) :] for entry in backend._list(backend.keys + below))


def object_key(store, number: int, file_name: str) -> str:
    return f"{store.backend.keys}uploads/{store.get(number).metadata['upload']}/{file_name}"


def test_the_server_refuses_what_s3_refuses(s3_server):
    """The guarantees below rest on these answers: a server that ignored the conditions would pass nothing."""
    client, bucket = s3_server.client, new_bucket(s3_server.client)
    first = client.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    client.put_object(Bucket=bucket, Key="k", Body=b"3", IfMatch=first["ETag"])
    with pytest.raises(ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=bucket, Key="k", Body=b"4", IfMatch=first["ETag"])
    assert client.get_object(Bucket=bucket, Key="k")["Body"].read() == b"3"


def test_concurrent_conditional_puts_of_one_key_let_exactly_one_win(s3_server):
    """What S3 does atomically, and moto's threaded server did not (tests/s3_support.py): this fails if
    the one-request-at-a-time wrapping of moto's application stops holding."""
    client, bucket = s3_server.client, new_bucket(s3_server.client)
    start, answers = threading.Barrier(6), []

    def claim(key: str) -> None:
        start.wait()
        try:
            client.put_object(Bucket=bucket, Key=key, Body=b"mine", IfNoneMatch="*")
            answers.append((key, "won"))
        except ClientError as error:
            answers.append((key, error.response["Error"]["Code"]))

    for key in (f"claim-{n}" for n in range(10)):
        threads = [threading.Thread(target=claim, args=(key,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(code for claimed, code in answers if claimed == key) == ["PreconditionFailed"] * 5 + ["won"]


def test_a_look_reads_as_of_its_listing_and_nothing_else_keeps_a_copy(store, worker):
    publish(store, b"one", {"note": "first"})
    with worker.one_look():
        assert worker.get(1).metadata["note"] == "first"
        store.update_metadata(1, lambda current: {**current, "note": "second"})
        assert worker.get(1).metadata["note"] == "first"  # as of the look's one listing
        elsewhere = []  # another thread is not in this thread's look
        thread = threading.Thread(target=lambda: elsewhere.append(worker.get(1).metadata["note"]))
        thread.start()
        thread.join()
        assert elsewhere == ["second"]
        publish(store, b"two")
        assert worker.versions() == [1]  # listed once
        assert worker.get(2).number == 2  # a number it did not list is read from the store
    assert worker.get(1).metadata["note"] == "second" and worker.versions() == [1, 2]  # outside: the store
    with worker.one_look():  # a new listing: the new ETag
        assert worker.get(1).metadata["note"] == "second"
        worker.get(1).metadata["note"] = "changed by a caller"
        assert worker.get(1).metadata["note"] == "second"  # the kept copy is not the caller's


def test_the_layout_files_first_then_the_manifest(store):
    version = publish(store, b"one")
    upload = version.metadata["upload"]
    assert keys(store) == [f"uploads/{upload}/model.bin", f"uploads/{upload}/model.onnx", "versions/1.json"]
    assert version.metadata["sha256"] and version.metadata["serving_sha256"] and version.metadata["version"] == 1
    # The publisher's files went into its cache, where its own loads find them.
    assert version.model_file.read_bytes() == b"one" and version.serving_file.read_bytes() == b"onnx:one"


def test_a_version_is_invisible_until_its_manifest_is_written(store, worker, monkeypatch):
    uploaded, release = threading.Event(), threading.Event()
    put_if = store.backend._put_if

    def manifest_waits(key, body, etag):
        if "/versions/" in key:
            uploaded.set()
            assert release.wait(60)
        return put_if(key, body, etag)

    monkeypatch.setattr(store.backend, "_put_if", manifest_waits)
    publisher = threading.Thread(target=publish, args=(store, b"one"))
    publisher.start()
    try:
        assert uploaded.wait(60)
        assert [key for key in keys(worker) if key.startswith("uploads/")]  # every file is in the bucket...
        assert worker.versions() == [] and worker.latest() is None and worker.active() is None  # ...no version
        with pytest.raises(ModelNotFound):
            worker.load_newest_loadable(read, load=worker.load_serving)
    finally:
        release.set()
        publisher.join()
    assert worker.versions() == [1] and worker.load_serving(1, read) == b"onnx:one"


KILLED_MID_UPLOAD = """
import os, signal, sys
from app.store import ModelStore
store = ModelStore("digits", root=sys.argv[1], cache=sys.argv[2])
call = store.backend._call
def call_then_die(operation, **arguments):
    answer = call(operation, **arguments)
    if operation == "put_object" and arguments["Key"].endswith("/model.bin"):
        os.kill(os.getpid(), signal.SIGKILL)  # the model is uploaded, the serving file and manifest are not
    return answer
store.backend._call = call_then_die
def save(folder):
    (folder / "model.bin").write_bytes(b"half")
    (folder / "model.onnx").write_bytes(b"never uploaded")
    return "model.bin"
store.publish(save, {}, serving_file="model.onnx")
"""


def test_a_publisher_killed_mid_upload_leaves_no_version_and_the_tidy_up_removes_only_its_objects(store, tmp_path):
    publish(store, b"one")
    dead = subprocess.run(
        [sys.executable, "-c", KILLED_MID_UPLOAD, store.root, str(tmp_path / "dead-cache")], cwd=PROJECT_ROOT
    )
    assert dead.returncode == -signal.SIGKILL
    orphans = [key for key in keys(store, "uploads/") if key.endswith("/model.bin")]
    assert len(orphans) == 2 and store.versions() == [1]  # its model is in the bucket; no version names it
    assert store.clean_temporary() == []  # younger than an hour: perhaps a publication under way
    removed = store.clean_temporary(older_than=0)
    assert len(removed) == 1 and removed[0] in orphans
    assert store.versions() == [1] and len(keys(store, "uploads/")) == 2  # version 1's two files stay
    assert ModelStore("digits", root=store.root, cache=tmp_path / "fresh").load(1, read) == b"one"
    assert publish(store, b"two").number == 2


def test_a_publisher_that_loses_a_number_takes_the_next_and_overwrites_nothing(store, worker, monkeypatch):
    """Two publishers decide on number 1; the conditional put lets only the first have it."""
    numbers, listings = worker.backend.numbers, []

    def first_listing_is_stale():  # the loser listed before the winner's manifest was written
        listings.append(numbers())
        return [] if len(listings) == 1 else listings[-1]

    monkeypatch.setattr(worker.backend, "numbers", first_listing_is_stale)
    assert publish(store, b"winner").number == 1
    assert publish(worker, b"loser").number == 2 and len(listings) >= 2  # refused at 1, listed again
    assert store.load(1, read) == b"winner" and store.load(2, read) == b"loser"
    assert store.get(1).metadata["upload"] != store.get(2).metadata["upload"]


def test_a_worker_never_loads_a_file_whose_sha256_differs_from_the_manifest(store, worker):
    publish(store, b"good")
    store.backend.client.put_object(
        Bucket=store.backend.bucket, Key=object_key(store, 1, "model.onnx"), Body=b"tampered"
    )
    opened = []
    with pytest.raises(CorruptModel, match="serving file sha256"):
        worker.load_serving(1, opened.append)
    assert opened == []  # the loader never saw it
    assert not worker.get(1).serving_file.exists()  # nor is it cached under its name
    with pytest.raises(ModelNotFound):  # and a starting worker finds nothing intact to fall back to
        worker.load_newest_loadable(read, load=worker.load_serving)


def count_downloads(store, monkeypatch) -> list[str]:
    downloads: list[str] = []
    call = store.backend._call

    def counting(operation, **arguments):
        if operation == "get_object" and "/uploads/" in arguments["Key"]:
            downloads.append(arguments["Key"])
        return call(operation, **arguments)

    monkeypatch.setattr(store.backend, "_call", counting)
    return downloads


def test_a_file_is_downloaded_once_and_a_damaged_copy_again(store, worker, tmp_path, monkeypatch):
    publish(store, b"one")
    downloads = count_downloads(worker, monkeypatch)
    assert worker.load_serving(1, read) == b"onnx:one" and worker.load_serving(1, read) == b"onnx:one"
    assert len(downloads) == 1
    restarted = ModelStore("digits", root=store.root, cache=tmp_path / "worker-cache")  # same cache folder
    again = count_downloads(restarted, monkeypatch)
    assert restarted.load_serving(1, read) == b"onnx:one" and again == []
    restarted.get(1).serving_file.write_bytes(b"damaged on the worker's disk")
    assert restarted.load_serving(1, read) == b"onnx:one" and len(again) == 1  # fetched again, checked
    # The publisher's own versions come from its cache: it never downloads what it uploaded.
    assert store.load_serving(1, read) == b"onnx:one" and count_downloads(store, monkeypatch) == []


def test_a_stale_active_write_never_overwrites_a_newer_one(store, worker, monkeypatch):
    publish(store, b"one")
    publish(store, b"two")
    # The publisher of version 3 reads the pin to clear it; an operator rolls back to 1 in between,
    # knowing version 3. The publisher's write carries the ETag it read: refused, it reads again and
    # leaves the newer pin. (An unconditional write would have served version 3.)
    get_json, interleaved = store.backend._get_json, []

    def operator_between(key):
        found = get_json(key)
        if key.endswith("/ACTIVE") and not interleaved and worker.latest() == 3:
            interleaved.append(worker.activate(1))
        return found

    monkeypatch.setattr(store.backend, "_get_json", operator_between)
    publish(store, b"three")
    assert interleaved and store.active() == 1 and worker.active() == 1
    # The compare-and-swap itself: a write with a stale ETag changes nothing.
    etag = store.backend._pointer()[0]
    worker.activate(2)
    assert store.backend._put_if(f"{store.backend.keys}ACTIVE", b'{"version": 3, "latest": 3}', etag) is None
    assert store.active() == 2
    # A pin made before a version existed gives way to that version once it is promoted.
    assert publish(store, b"four").number == 4 and store.active() == 4


def test_part_3s_training_lease_lasts_as_long_as_a_jobs_heartbeat(bucket_url, tmp_path):
    """A trainer gone silent frees the store's lease when its job is failed (WORKSHOP_HEARTBEAT_TIMEOUT),
    not 30 s later whatever the setting."""
    from app.part3.settings import Settings

    def part3(folder: str, **settings) -> Settings:
        return Settings(models_dir=tmp_path / folder, models_url=bucket_url, models_cache=tmp_path / folder, **settings)

    quick, default = part3("quick", heartbeat_timeout=0.5), part3("default")
    silent = quick.store("digits").training_lock().acquire()
    silent._stop.set()  # it stops renewing, as a SIGKILLed trainer does
    with pytest.raises(Timeout):  # with the default timeout (30 s) the lease is still held
        default.store("digits").training_lock(timeout=2).acquire()
    assert (quick.store("digits").training_lock().ttl, default.store("digits").training_lock().ttl) == (0.5, 30)
    quick.store("digits").training_lock(timeout=20).acquire().release()  # taken over after 0.5 s


def test_a_lease_taken_over_from_a_stalled_holder_is_not_released_by_it(store, worker):
    store.backend.lease_ttl = worker.backend.lease_ttl = 0.5
    stalled = store.training_lock().acquire()
    stalled._stop.set()  # its renewals stop, as in a process paused for longer than the ttl
    successor = worker.training_lock(timeout=60).acquire()
    try:
        assert wait_until(lambda: stalled._renewer is None or not stalled._renewer.is_alive(), "renewals stopped")
        stalled.release()  # its release must not free the successor's lease
        with pytest.raises(Timeout):
            ModelStore("digits", root=store.root, cache=store.path.parent).training_lock(timeout=0).acquire()
    finally:
        successor.release()
    with worker.training_lock(timeout=0):  # released by its holder: free at once
        pass


def test_the_journal_keeps_one_whole_line_per_request_under_concurrent_puts(tmp_path):
    """moto's recorder writes an entry and its newline in two calls: under `python -m moto.server`,
    concurrent requests shared journal lines and the replay failed (a CI run). This fails if the
    journaled server answers requests concurrently again."""
    server = JournaledMotoServer(tmp_path / "s3").start()
    try:
        with environment(**s3_environment(server.url, tmp_path / "cache")):
            import boto3

            client = boto3.session.Session().client("s3")
            bucket = new_bucket(client)
            body = os.urandom(200_000)
            start = threading.Barrier(8)

            def put(worker: int) -> None:
                start.wait()
                for n in range(5):
                    client.put_object(Bucket=bucket, Key=f"{worker}/{n}", Body=body)

            threads = [threading.Thread(target=put, args=(worker,)) for worker in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            puts = [entry for entry in server.requests() if entry["method"] == "PUT"]
            assert len(puts) == 1 + 8 * 5  # the bucket and every object, each on a line of its own

            with open(server.journal, "a") as journal:
                journal.write('{"headers": {"Host": "127.0.0.1", "method": "PU')  # a record cut by SIGKILL
            server.kill()
            server.start()
            assert len(client.list_objects_v2(Bucket=bucket)["Contents"]) == 40
    finally:
        server.kill()


def test_the_store_stopped_and_started_again_loses_nothing(tmp_path):
    server = JournaledMotoServer(tmp_path / "s3").start()
    try:
        with environment(**s3_environment(server.url, tmp_path / "cache")):
            import boto3

            bucket = new_bucket(boto3.session.Session().client("s3"))
            url = f"s3://{bucket}/models"
            store = ModelStore("digits", root=url, cache=tmp_path / "publisher")
            for content in (b"one", b"two", b"three"):
                publish(store, content)
            store.activate(2)
            before = {version.number: version.metadata for version in store.all_versions()}

            server.kill()
            with pytest.raises(StoreUnavailable, match=bucket):
                store.versions()
            server.start()  # a new process: the journal replayed

            worker = ModelStore("digits", root=url, cache=tmp_path / "worker")
            assert {version.number: version.metadata for version in worker.all_versions()} == before
            assert worker.active() == 2
            assert [worker.load_serving(n, read) for n in (1, 2, 3)] == [b"onnx:one", b"onnx:two", b"onnx:three"]
            assert publish(store, b"four").number == 4 and worker.active() == 4  # the pin's ETag still matched
            with pytest.raises(ClientError, match="PreconditionFailed"):  # numbers stay claimed
                store.backend.client.put_object(
                    Bucket=bucket, Key=f"{store.backend.keys}versions/1.json", Body=b"{}", IfNoneMatch="*"
                )
    finally:
        server.kill()


def every_call(store, tmp_path) -> dict:
    """Each public method of ModelStore, called once."""
    return {
        "versions": store.versions,
        "latest": store.latest,
        "active": store.active,
        "promoted": lambda: store.promoted(1),
        "get": lambda: store.get(1),
        "all_versions": store.all_versions,
        "load": lambda: store.load(1, read),
        "load_serving": lambda: store.load_serving(1, read),
        "servable": store.servable,
        "newest_servable": store.newest_servable,
        "load_newest_loadable": lambda: store.load_newest_loadable(read),
        "add_serving_file": lambda: store.add_serving_file(1, lambda folder: "x", {}),
        "update_metadata": lambda: store.update_metadata(1, lambda current: {**current, "x": 1}),
        "publish": lambda: publish(store, b"x"),
        "training_lock": lambda: store.training_lock(timeout=0).acquire(),
        "activate": lambda: store.activate(1),
        "clean_temporary": lambda: store.clean_temporary(older_than=0),
    }


def test_a_missing_bucket_raises_store_unavailable_from_every_call(s3_server, tmp_path):
    store = ModelStore("digits", root="s3://no-such-bucket-here/models", cache=tmp_path)
    for name, call in every_call(store, tmp_path).items():
        with pytest.raises(StoreUnavailable, match="s3://no-such-bucket-here/models/digits/") as raised:
            call()
        assert "NoSuchBucket" in str(raised.value), name


def test_an_unreachable_store_raises_store_unavailable_naming_it_never_its_credentials(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with environment(**s3_environment(endpoint, tmp_path / "cache")):
        store = ModelStore("digits", root="s3://models/prefix", cache=tmp_path)
        for name, call in every_call(store, tmp_path).items():
            with pytest.raises(StoreUnavailable) as raised:
                call()
            message = str(raised.value)
            assert "s3://models/prefix/digits/" in message and endpoint in message, (name, message)
            assert (
                CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in message and CREDENTIALS["AWS_ACCESS_KEY_ID"] not in message
            )


def test_the_setting_chooses_the_backend(tmp_path):
    with environment(WORKSHOP_MODELS_URL="s3://models/workshop", WORKSHOP_MODELS_DIR=str(tmp_path)):
        store = ModelStore("mnist")
        assert isinstance(store.backend, BucketBackend) and store.location == "s3://models/workshop/mnist/"
    with environment(WORKSHOP_MODELS_URL=None, WORKSHOP_MODELS_DIR=str(tmp_path)):
        assert ModelStore("mnist").path == tmp_path / "mnist"
    with environment(WORKSHOP_MODELS_CACHE=None):
        assert not models_cache_dir().is_relative_to(PROJECT_ROOT)
    assert split_url("s3://bucket") == ("bucket", "") and split_url("s3://bucket/a/b/") == ("bucket", "a/b/")
    for wrong in ("s3:///prefix", "gs://bucket/prefix", "bucket/prefix"):
        with pytest.raises(ValueError):
            split_url(wrong)


def test_make_bucket_makes_the_bucket_the_store_names_once(s3_server, tmp_path, capsys):
    from app.storage.make_bucket import main, make_bucket

    url = f"s3://made-{uuid.uuid4().hex[:12]}/workshop"
    assert make_bucket(url) is True and make_bucket(url) is False
    assert publish(ModelStore("digits", root=url, cache=tmp_path), b"one").number == 1
    with environment(WORKSHOP_MODELS_URL=None):
        assert main() == 2
    with environment(WORKSHOP_MODELS_URL=url):
        assert main() == 0 and "already there" in capsys.readouterr().out


def test_junk_in_the_bucket_is_ignored(store):
    publish(store, b"one")
    backend = store.backend
    for key, body in (
        ("versions/notes.json", b"{}"),  # not a number
        ("versions/02.json", b"{}"),  # not how the store writes 2
        ("versions/3.json.tmp", b"{}"),
        ("model_2024-01-01 12:00:00.keras", b"the workshop's naming"),
        ("uploads/crashed/model.bin", b"half"),
    ):
        backend.client.put_object(Bucket=backend.bucket, Key=backend.keys + key, Body=body)
    assert store.versions() == [1] and store.active() == 1
    backend.client.put_object(Bucket=backend.bucket, Key=backend.keys + "versions/2.json", Body=b'{"no": "upload"}')
    assert store.versions() == [1, 2] and not store.promoted(2) and store.active() == 1  # listed, never served
    assert store.load_newest_loadable(read) == (1, b"one")
    assert publish(store, b"three").number == 3  # the next number past every manifest


def test_an_unreadable_pin_or_lease_is_no_pin_and_no_holder(store):
    publish(store, b"one")
    publish(store, b"two")
    backend = store.backend
    for key in ("ACTIVE", "training-lease", "versions/3.json"):
        backend.client.put_object(Bucket=backend.bucket, Key=backend.keys + key, Body=b"\xff not json")
    assert store.active() == 2 and not store.promoted(3)
    assert store.activate(1).number == 1 and store.active() == 1  # the pin is replaced, compare-and-swap as ever
    store.backend.lease_ttl = 0.5
    with store.training_lock(timeout=60):  # an unreadable lease is taken over once it has stayed unchanged
        pass


def test_a_conditional_put_retried_after_it_succeeded_is_still_ours(store):
    """botocore retries a put whose answer was lost; the retry meets the object the first attempt wrote."""
    key = f"{store.backend.keys}versions/1.json"
    first = store.backend._put_if(key, b'{"upload": "mine"}', None)
    assert first is not None and store.backend._put_if(key, b'{"upload": "mine"}', None) == first
    assert store.backend._put_if(key, b'{"upload": "theirs"}', None) is None


def test_a_folder_store_copied_into_a_bucket_is_the_same_store(bucket_url, tmp_path):
    """`python -m app.storage.copy_store models s3://...`: how a deployment moves to object storage."""
    folder = ModelStore("digits", tmp_path / "models")
    for content in (b"first", b"second", b"third"):
        publish(folder, content, {"gate": {"decision": "promoted"}, "data": {"source": content.decode()}})
    folder.activate(2)  # a rollback: the pin goes too
    assert copy_store.main([str(tmp_path / "models"), bucket_url]) == 0

    copied = ModelStore("digits", bucket_url, cache=tmp_path / "reader")
    assert copied.versions() == [1, 2, 3] and copied.active() == 2
    for number in (1, 2, 3):
        original, copy = folder.get(number).metadata, copied.get(number).metadata
        assert {key: copy[key] for key in original if key != "created_at"} == {
            key: value for key, value in original.items() if key != "created_at"
        }
        assert copied.load_serving(number, read) == folder.load_serving(number, read)


def test_a_damaged_source_version_stops_the_copy(bucket_url, tmp_path):
    folder = ModelStore("digits", tmp_path / "models")
    publish(folder, b"whole")
    publish(folder, b"to be damaged")
    folder.get(2).model_file.write_bytes(b"damaged")
    with pytest.raises(CorruptModel):
        copy_store.main([str(tmp_path / "models"), bucket_url])
