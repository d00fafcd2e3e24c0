"""Numba CPU kernels.

Every launch of a parallel kernel goes through :func:`launch`:

* It holds ``LAUNCH_LOCK``: Numba's default 'workqueue' threading layer must
  not be entered by two Python threads at once (Dask's threaded scheduler, a
  threaded grid search, ...). Each launch already uses every core, so
  serialising costs nothing.
* It hands the row parts to the threads one at a time (Numba's parallel chunk
  size 1) instead of in one equal slice per thread up front, so a core slowed
  by other work does not leave the others idle at the end of a pass. Each part
  writes only its own partial results, so the results do not depend on which
  thread ran which part.
"""

import contextlib
import threading

import numba

LAUNCH_LOCK = threading.RLock()


@contextlib.contextmanager
def launch():
    """Context for one parallel kernel launch (see the module docstring)."""
    with LAUNCH_LOCK, numba.parallel_chunksize(1):
        yield
