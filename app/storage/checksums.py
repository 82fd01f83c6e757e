"""The sha256 that every stored file is checked against before a loader opens it."""

import hashlib
from pathlib import Path

from app.storage.store_errors import CorruptModel


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str | None, what: str) -> Path:
    """`path` if its sha256 is `expected`, else CorruptModel naming `what` (e.g. "wine version 3: serving file")."""
    actual = sha256_of(path)
    if actual != expected:
        raise CorruptModel(f"{what} sha256 {actual} != metadata's {expected}")
    return path
