"""A child process that decodes and predicts single images for one worker while its event loop is busy.

Why a process: a worker's event loop does every request's HTTP work, and a single image's decoding
and prediction take about 0.15 ms more of it. Under concurrent load that is what limits requests/s.
A thread does not help: measured, the loop and a predicting thread take turns holding the GIL, and
the loop gained almost nothing. A child process has its own GIL. It imports only NumPy and Pillow
(no Keras: it receives the model's weights as arrays, see app/mnist_numpy.layer_specs), so it
starts in a fraction of a second and adds about 60 MiB.

The protocol, over a socket pair with multiprocessing's Connection (pickled tuples):
    parent -> child  ("model", version, specs)            before the first image of a version
                     ("predict", [(id, version, filename, bytes), ...])
                     ("stop",)
    child -> parent  [(id, "ok", digit) | (id, "refused", status, message) | (id, "failed", why), ...]
Requests that arrive together go in one message and are answered in one NumPy call.

The parent side (`DigitHelper`) never blocks on the child: answers are read when the socket is
readable. If the child dies, fails or is stuck (no answer in ANSWER_TIMEOUT), every request waiting
on it is answered by the worker itself (`HelperGone`), and a later request starts a new child (at
most one start per RESTART_DELAY).

    python -m app.part3.digit_helper FD      # what DigitHelper runs
"""

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

APP_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `app` package
KEPT_VERSIONS = 2  # a request may still name the previous version while a new one arrives
ANSWER_TIMEOUT = 5.0  # seconds; a child this late is stuck: the worker answers and starts another
RESTART_DELAY = 1.0  # seconds between starts, so a child that cannot start is not retried per request


class HelperGone(RuntimeError):
    """The child process is not running (not started, stopped, or died): answer in the worker."""


# -- the child -------------------------------------------------------------------------------
def serve(connection: Connection) -> None:
    from threadpoolctl import threadpool_limits

    from app import images
    from app.mnist_numpy import forward_from_specs

    threadpool_limits(limits=1, user_api="blas")  # one core's worth, beside the worker's event loop
    forwards = {}
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return  # the worker went away
        if message[0] == "stop":
            return
        if message[0] == "model":
            _, version, specs = message
            forwards[version] = forward_from_specs(specs)
            for old in sorted(forwards)[:-KEPT_VERSIONS]:
                del forwards[old]
            continue
        answers = []
        decoded = []
        for request_id, version, filename, data in message[1]:
            try:
                decoded.append((request_id, version, images.decode_digits([data], [filename])[0]))
            except images.UploadError as error:
                answers.append((request_id, "refused", error.status_code, error.message))
        for version in {version for _, version, _ in decoded}:
            batch = [(request_id, pixels) for request_id, v, pixels in decoded if v == version]
            try:
                scores = forwards[version].scores(np.stack([pixels for _, pixels in batch]))
            except Exception as error:  # e.g. a version whose weights never arrived: the worker answers these
                answers += [(request_id, "failed", f"{type(error).__name__}: {error}") for request_id, _ in batch]
                continue
            answers += [(request_id, "ok", int(digit)) for (request_id, _), digit in zip(batch, scores.argmax(axis=-1))]
        connection.send(answers)


def main() -> None:
    serve(Connection(int(sys.argv[1])))


# -- the parent --------------------------------------------------------------------------------
class DigitHelper:
    """The worker's side: start the child, send it images, await its answers (event loop only)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.connection: Connection | None = None
        self.waiting: dict[int, asyncio.Future] = {}
        self.pending: list[tuple] = []
        self.versions_sent: set[int] = set()
        self.next_id = 0
        self.started_at = -RESTART_DELAY

    @property
    def running(self) -> bool:
        return self.connection is not None

    def start(self) -> bool:
        """Start the child. False if it cannot be started (no file descriptors or processes left,
        say): that is logged, the worker answers alone, and a later request tries again."""
        self.started_at = time.monotonic()
        try:
            ours, theirs = socket.socketpair()
        except OSError as error:
            log.warning("cannot start the digit helper (%s); the worker answers alone", error)
            return False
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.part3.digit_helper", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                # The child imports `app` from where this worker found it, whatever its directory.
                env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(APP_ROOT), os.environ.get("PYTHONPATH")]))},
            )
        except OSError as error:
            ours.close()
            log.warning("cannot start the digit helper (%s); the worker answers alone", error)
            return False
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        asyncio.get_running_loop().add_reader(self.connection.fileno(), self._read_answers)
        self.versions_sent.clear()
        return True

    async def digit(self, version: int, specs, filename: str | None, data: bytes) -> int:
        """The digit in one image, by model `version` (`specs()` gives its weights the first time).
        Raises UploadError as the worker would, and HelperGone when the child is not running."""
        if not self.running:
            if time.monotonic() - self.started_at < RESTART_DELAY:
                raise HelperGone("the digit helper stopped a moment ago")
            if not self.start():
                raise HelperGone("the digit helper cannot be started")
        if version not in self.versions_sent:
            self._send(("model", version, specs()))
            self.versions_sent.add(version)
        request_id, self.next_id = self.next_id, self.next_id + 1
        future = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = future
        if not self.pending:  # the first of this turn of the event loop: send them all at its end
            asyncio.get_running_loop().call_soon(self._send_pending)
        self.pending.append((request_id, version, filename, data))
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                return await future
        except TimeoutError:
            self.waiting.pop(request_id, None)
            self._gone()
            raise HelperGone(f"the digit helper did not answer within {ANSWER_TIMEOUT} s") from None

    def _send_pending(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            try:
                self._send(("predict", batch))
            except HelperGone:
                pass  # _gone() has answered every waiting request

    def _send(self, message) -> None:
        if not self.running:
            raise HelperGone("the digit helper is not running")
        try:
            self.connection.send(message)
        except OSError:
            self._gone()
            raise HelperGone("the digit helper stopped") from None

    def _read_answers(self) -> None:
        from app.images import UploadError

        try:
            answers = self.connection.recv()
        except (EOFError, OSError):
            self._gone()
            return
        for request_id, outcome, *details in answers:
            future = self.waiting.pop(request_id, None)
            if future is None or future.done():
                continue
            if outcome == "ok":
                future.set_result(details[0])
            elif outcome == "failed":
                future.set_exception(HelperGone(f"the digit helper failed: {details[0]}"))
            else:
                status, message = details
                future.set_exception(UploadError(message, status))

    def _gone(self) -> None:
        """The child died or its socket failed: whoever waits on it is answered by the worker."""
        log.warning("the digit helper stopped; the worker answers alone until it restarts")
        process = self._close("the digit helper stopped")
        if process is not None and process.poll() is None:
            process.kill()

    def _close(self, reason: str) -> subprocess.Popen | None:
        if self.connection is not None:
            asyncio.get_running_loop().remove_reader(self.connection.fileno())
            self.connection.close()
        waiting, process = self.waiting, self.process
        self.connection, self.process, self.waiting, self.pending = None, None, {}, []
        for future in waiting.values():
            if not future.done():
                future.set_exception(HelperGone(reason))
        return process

    async def stop(self) -> None:
        if not self.running:
            return
        try:
            self.connection.send(("stop",))
        except OSError:
            pass
        process = self._close("the digit helper was stopped")
        if process is not None:
            try:
                await asyncio.to_thread(process.wait, 5)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
