"""The training lock of a store in a bucket: a lease object made with a conditional put.

    with store.training_lock():      # as filelock's FileLock: acquire(), release(), filelock.Timeout
        ...

- **Taking it**: put the lease object with `If-None-Match: *`; only one of any number of takers
  succeeds. A released lease is taken back with `If-Match` on its ETag (one taker wins again).
- **Holding it**: a thread rewrites the object every third of `ttl` (a counter in the body, so its
  ETag changes), with `If-Match` on the ETag it last wrote.
- **Taking over a dead holder's**: a waiter that sees the same ETag for longer than `ttl` by its
  own clock (no clocks are compared across machines) takes the lease over with `If-Match` on that
  ETag, so only one waiter can.

What it guarantees: one holder at a time among processes that reach the store and renew within
`ttl`; a holder that dies (crash, SIGKILL, its machine gone) is replaced within about `ttl` plus a poll.
What it does not: a holder paused or cut off from the store for longer than `ttl` (a stopped process,
a long GC, a partition) loses the lease without knowing until its next renewal, and meanwhile two
processes may both believe they hold it (`lost` says so afterwards). The store's numbering stays safe
even then (each manifest is a conditional put), so the worst case is two versions fine-tuned from the
same base, never a version overwritten. In the distributed Part 3 mode the queue's own lock (Redis)
already runs one training at a time; this lease is the store's guard for any other publisher.
"""

import json
import logging
import threading
import time
import uuid
from typing import Any

from filelock import Timeout

from app.storage.store_errors import StoreUnavailable

log = logging.getLogger(__name__)


class Lease:
    def __init__(self, backend: Any, key: str, ttl: float, timeout: float = -1) -> None:
        self.backend, self.key, self.ttl, self.timeout = backend, key, ttl, timeout
        self.owner = uuid.uuid4().hex
        self.lost = False  # set when a renewal found the lease taken over
        self._etag: str | None = None
        self._renewals = 0
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    @property
    def is_locked(self) -> bool:
        return self._etag is not None

    def _body(self, **fields: Any) -> bytes:
        return json.dumps({"owner": self.owner, "renewal": self._renewals, "ttl": self.ttl, **fields}).encode()

    def acquire(self, timeout: float | None = None) -> "Lease":
        timeout = self.timeout if timeout is None else timeout
        deadline = None if timeout < 0 else time.monotonic() + timeout
        poll = max(0.1, min(1.0, self.ttl / 10))
        seen: tuple[str, float] | None = None  # (ETag, when first seen) of someone else's lease
        while True:
            found = self.backend._get_json(self.key)
            if found is None:  # never taken: the first conditional put wins
                self._etag = self.backend._put_if(self.key, self._body(), None)
            else:
                etag, body = found[0], found[1] if isinstance(found[1], dict) else {}
                now = time.monotonic()
                if seen is None or seen[0] != etag:
                    seen = (etag, now)
                if body.get("released") or now - seen[1] > self.ttl:  # free, or its holder stopped renewing
                    self._etag = self.backend._put_if(self.key, self._body(), etag)
                    if self._etag is not None and not body.get("released"):
                        log.warning("took over the training lease %s: not renewed for %.0f s", self.key, self.ttl)
            if self._etag is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(f"s3://{self.backend.bucket}/{self.key}")
            time.sleep(poll)
        self.lost = False
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name="training-lease", daemon=True)
        self._renewer.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self._renewals += 1
            try:
                etag = self.backend._put_if(self.key, self._body(), self._etag)
            except StoreUnavailable as error:  # try again at the next tick; past ttl a waiter may take over
                log.error("could not renew the training lease %s: %s", self.key, error)
                continue
            if etag is None:
                self.lost = True
                log.error("the training lease %s was taken over: another trainer may be publishing", self.key)
                return
            self._etag = etag

    def release(self, force: bool = False) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if self._etag is not None and not self.lost:
            self._renewals += 1
            self.backend._put_if(self.key, self._body(released=True), self._etag)  # only if still ours
        self._etag = None

    def __enter__(self) -> "Lease":
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()
