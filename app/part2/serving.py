"""The model a Part 2 service answers with: loaded once, replaced when the store has a newer version.

The workshop loads the .keras file on every prediction, far slower than using a model already in
memory (bench/RESULTS.md has the figures). Asking the store which version it serves costs one directory listing, so
each request asks, and only a new version makes it load a model. Every worker and every process
sharing the store therefore serves a new version from its next request on, without a restart.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from app.models import mnist
from app.store import CorruptModel, ModelNotFound, ModelStore

RETRY_AFTER_SECONDS = 10
logger = logging.getLogger(__name__)


def no_model_yet() -> HTTPException:
    """503 with Retry-After: the request is fine, the service is not ready for it yet."""
    return HTTPException(
        status_code=503,
        detail="no model is trained yet; a first training may be under way, try again later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@dataclass(frozen=True)
class ServedModel:
    version: int
    model: Any


class LatestModel:
    """The store's served version, kept in memory: `latest.get()` in a route, per request."""

    def __init__(self, store: ModelStore, loader: Callable[[Path], Any] = mnist.load) -> None:
        self.store = store
        self.loader = loader
        self._current: ServedModel | None = None  # replaced whole, so a reader never sees half
        self._refused: int | None = None  # a corrupt version, not retried on every request
        self._loading = threading.Lock()

    def get(self) -> ServedModel:
        """The served model, loading the store's version first if it changed; 503 if there is none."""
        number = self.store.active()
        current = self._current
        if number is None or number == self._refused or (current is not None and current.version == number):
            if current is None:
                raise no_model_yet()
            return current
        with self._loading:  # one request loads the new version; the others wait for it, then use it
            current = self._current
            if current is None or current.version != number:
                try:
                    current = self._current = ServedModel(number, self.store.load(number, self.loader))
                except (CorruptModel, ModelNotFound) as error:  # keep serving the version we have
                    logger.error("not serving %s version %s: %s", self.store.name, number, error)
                    if isinstance(error, CorruptModel):
                        self._refused = number
                    if current is None:  # nothing to serve yet: the newest older version that is intact
                        current = self._current = self._newest_intact(below=number)
        return current

    def _newest_intact(self, below: int) -> ServedModel:
        try:
            number, model = self.store.load_newest_loadable(self.loader, below=below)
        except ModelNotFound:
            raise no_model_yet() from None
        logger.error("serving %s version %s, the newest that is intact", self.store.name, number)
        return ServedModel(number, model)
