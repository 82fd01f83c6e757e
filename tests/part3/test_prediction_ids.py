"""app/part3/prediction_ids.py: ids are unique, signed, and read back only as issued."""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from app.part3.prediction_ids import _NONCES, InvalidPredictionId, PredictionIds, shared_secret_in_redis


def test_every_id_is_unique_and_reads_back_as_issued():
    ids = PredictionIds(b"s" * 32, 3600.0)
    issued = [ids.issue("mnist", 3, str(n % 10), f"{n:016x}") for n in range(2000)]
    assert len(set(issued)) == len(issued)
    read = ids.read(issued[1234])
    assert (read.model, read.version, read.answer, read.input_digest) == ("mnist", 3, "4", f"{1234:016x}")


@pytest.mark.parametrize("secret", [b"", b"short", b"x" * 200])  # WORKSHOP_FEEDBACK_SECRET may be any length
def test_any_secret_signs_and_another_secret_refuses(secret):
    prediction_id = PredictionIds(secret, 3600.0).issue("penguins", 1, "Adelie")
    assert PredictionIds(secret, 3600.0).read(prediction_id).answer == "Adelie"
    with pytest.raises(InvalidPredictionId, match="signature does not match"):
        PredictionIds(secret + b"!", 3600.0).read(prediction_id)


# The child only writes to a pipe and leaves: none of the parent's threads' locks are touched.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_worker_draws_its_own_nonce_prefix():
    """Workers forked from one process (gunicorn --preload) must not issue the same nonces."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its prefix and leave at once
        os.write(write, _NONCES.prefix.encode())
        os._exit(0)
    os.close(write)
    child_prefix = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child_prefix and child_prefix != _NONCES.prefix


def test_the_distributed_secret_is_made_once_and_every_process_reads_it(redis_server):
    """No folder is shared across machines: the first replica to ask sets it in Redis, the rest read it."""
    client = redis.Redis.from_url(redis_server.url)
    client.delete("workshop:feedback-secret")
    with ThreadPoolExecutor(8) as pool:
        made = set(pool.map(lambda _: shared_secret_in_redis(redis_server.url), range(16)))
    assert len(made) == 1 and len(made.pop()) == 32
    issued = PredictionIds(shared_secret_in_redis(redis_server.url), 3600.0).issue("mnist", 1, "7")
    assert PredictionIds(shared_secret_in_redis(redis_server.url), 3600.0).read(issued).answer == "7"
