"""Numba CPU kernels.

``LAUNCH_LOCK`` serialises launches of the parallel kernels: Numba's default
'workqueue' threading layer must not be entered by two Python threads at once
(Dask's threaded scheduler, a threaded grid search, ...). Each launch already
uses every core, so serialising costs nothing.
"""

import threading

LAUNCH_LOCK = threading.RLock()
