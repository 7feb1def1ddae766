"""A hard stop for a tool handler that ignores its deadline.

Handlers bound their own waits by ``ToolContext.remaining()`` (sockets,
subprocesses). As a backstop, on the main thread of a process (a Celery
prefork child, the test runner) a real-time interval timer interrupts the
handler with :class:`ToolTimeout` a short grace after the deadline. An outer timer
(pytest-timeout, another guard) is saved and re-armed afterwards. Off the main
thread only the cooperative deadline applies.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from tools.errors import ToolTimeout


def hard_stop_grace(timeout: float) -> float:
    """How long past its deadline a handler is left to notice it before the hard stop."""
    return min(2.0, timeout * 0.5)


@contextmanager
def deadline_guard(seconds: float, *, label: str = "the tool", limit: float | None = None) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (reported as running past ``limit``, by default ``seconds``)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_delay and outer_delay <= seconds:
        yield  # an outer timer fires first; leave it in charge
        return
    previous = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise ToolTimeout(f"{label} ran past its {limit if limit is not None else seconds:g} s limit")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)
