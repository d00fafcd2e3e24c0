"""Seconds this process has spent compiling kernels, from Numba's compile events.

A kernel compiles on its first use for a given CPU and input type, then loads
from Numba's on-disk cache. The fit loop reads :func:`compile_seconds` around
each pass so that compilation is reported on its own
(``compile_seconds_``; ``verbose`` prints it on its own line) and the times
of the initialisation and of every iteration are those of the work itself.
"""

from __future__ import annotations

import threading
import time

from numba.core import event


class _CompileClock(event.Listener):
    """Adds up the wall time of outermost ``numba:compile`` events (a kernel's
    compile includes those of the helpers it calls), per process."""

    def __init__(self):
        self.seconds = 0.0
        self._local = threading.local()
        self._lock = threading.Lock()

    def on_start(self, ev):
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.t0 = time.perf_counter()
        self._local.depth = depth + 1

    def on_end(self, ev):
        self._local.depth -= 1
        if self._local.depth == 0:
            with self._lock:
                self.seconds += time.perf_counter() - self._local.t0


_CLOCK = _CompileClock()
event.register("numba:compile", _CLOCK)


def compile_seconds() -> float:
    """Seconds spent compiling kernels in this process so far (all threads)."""
    return _CLOCK.seconds
