"""What every suite's scaffolding waits with: `wait_until` polls a condition with a generous deadline (a
safety net on a shared machine, never a speed assertion), and `free_port` finds a loopback port."""

import socket
import time
from collections.abc import Callable

WAIT = 300.0  # seconds; generous because other processes share the two cores


def wait_until(condition: Callable[[], object], what: str, timeout: float = WAIT, step: float = 0.02):
    """Poll `condition` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting until {what}")
        time.sleep(step)
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
