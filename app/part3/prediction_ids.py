"""Prediction ids: what an answer was, signed, so feedback can name it without the service storing it.

    <base64url of "model|version|answer|unix time|nonce|input digest">.<base64url of its MAC>

The prediction path writes nothing: the id carries what `POST /feedback/` needs (which model and
version answered what, and when), and a MAC under a secret every worker shares proves the
service issued it, so any worker or replica can take the feedback and a forged or edited id is
refused. The MAC is keyed BLAKE2b, the MAC that Python's hashlib documents as a faster
replacement for HMAC; the nonce is a random per-process prefix and a counter, so issuing an id
makes no system call. The id also holds a digest of the input that was predicted (its row in the
model's input form: an image's pixels, a row of measurements), so an input sent back with the feedback
must be the one that was predicted.

The secret is WORKSHOP_FEEDBACK_SECRET, else made once where every worker finds it: in the distributed
mode, a key of the queue's Redis set only if absent (SET NX), so every replica on every machine
agrees; on one machine, `<models dir>/.secret`, written to a temporary file and hard-linked into
place, which fails if another process made it first (then that one is read).
"""

import base64
import binascii
import hashlib
import hmac
import itertools
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import redis

SECRET_FILE = ".secret"
SIGNATURE_BYTES = 16
MAX_ID_LENGTH = 400
ID_PATTERN = re.compile(r"^([A-Za-z0-9_-]{8,380})\.([A-Za-z0-9_-]{22})$")
CLOCK_SKEW = 300.0  # seconds an id may seem to come from the future (another host's clock)


class InvalidPredictionId(ValueError):
    """An id this service did not issue, or one too old to take feedback on."""


@dataclass(frozen=True)
class IssuedPrediction:
    key: str  # unique per prediction: the signed part of the id
    model: str
    version: int
    answer: str
    issued_at: float
    input_digest: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def input_digest(row: np.ndarray) -> str:
    """A digest of one input row's bytes (in the model's dtype), to match feedback to its prediction."""
    return hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=8).hexdigest()


def shared_secret(models_dir: Path) -> bytes:
    """The store's secret, created with the first call on this store (see the module docstring)."""
    path = Path(models_dir) / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".tmp-{secrets.token_hex(8)}-{SECRET_FILE}")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32))
        file.flush()
        os.fsync(file.fileno())
    try:
        os.link(temp, path)  # atomic, and never replaces a secret another process made first
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def shared_secret_in_redis(url: str, key: str = "workshop:feedback-secret") -> bytes:
    """The distributed mode's secret: the first process to ask sets it (SET NX), every other reads it."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
    try:
        client.set(key, secrets.token_hex(32), nx=True)
        return bytes.fromhex(client.get(key).decode())
    finally:
        client.close()


class _Nonces:
    """Unique per process: a random prefix and a counter, the prefix drawn again in a forked child."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = secrets.token_hex(6)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):x}"


_NONCES = _Nonces()


class PredictionIds:
    def __init__(self, secret: bytes, max_age: float) -> None:
        self.secret = secret
        self.max_age = max_age
        self._key = hashlib.blake2b(secret, digest_size=32).digest()  # any secret's length becomes a BLAKE2b key

    def _sign(self, body: str) -> str:
        return _b64(hashlib.blake2b(body.encode(), key=self._key, digest_size=SIGNATURE_BYTES).digest())

    def issue(self, model: str, version: int, answer: str, digest: str = "") -> str:
        body = _b64(f"{model}|{version}|{answer}|{int(time.time())}|{_NONCES.next()}|{digest}".encode())
        return f"{body}.{self._sign(body)}"

    def read(self, prediction_id: str) -> IssuedPrediction:
        """What the id says, once its signature and age are checked; InvalidPredictionId otherwise."""
        match = ID_PATTERN.match(prediction_id) if len(prediction_id) <= MAX_ID_LENGTH else None
        if not match:
            raise InvalidPredictionId("the prediction_id is not one this service issues (malformed)")
        body, signature = match.groups()
        if not hmac.compare_digest(signature, self._sign(body)):
            raise InvalidPredictionId("the prediction_id was not issued by this service (its signature does not match)")
        try:
            model, version, answer, issued_at, _, digest = _unb64(body).decode().split("|")
            issued = IssuedPrediction(body, model, int(version), answer, float(issued_at), digest)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidPredictionId("the prediction_id is not one this service issues (unreadable)") from None
        age = time.time() - issued.issued_at
        if age > self.max_age:
            raise InvalidPredictionId(
                f"the prediction_id expired: it is {age / 3600:.1f} h old and feedback is taken for "
                f"{self.max_age / 3600:.1f} h (WORKSHOP_FEEDBACK_MAX_AGE)"
            )
        if age < -CLOCK_SKEW:
            raise InvalidPredictionId("the prediction_id comes from the future")
        return issued
