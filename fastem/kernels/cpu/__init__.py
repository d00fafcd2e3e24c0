"""Numba CPU kernels.

Every launch of a parallel kernel goes through :func:`launch`, which holds
``LAUNCH_LOCK``: each launch already runs on every core
(:func:`._parts.run_parts`), so launches from several Python threads at once
(Dask's threaded scheduler, a threaded grid search, ...) take turns instead
of oversubscribing the cores.
"""

import contextlib
import threading

LAUNCH_LOCK = threading.RLock()


@contextlib.contextmanager
def launch():
    """Context for one parallel kernel launch (see the module docstring)."""
    with LAUNCH_LOCK:
        yield
