"""Run a compiled driver over row parts on Python threads.

The drivers are compiled with ``nogil=True`` (``_jit.driver``). Each takes a
one-element int64 ``counter`` as its last argument and loops::

    while True:
        p = next_part(counter)      # an atomic fetch-and-add
        if p >= n_parts:
            break
        ...                         # part p, written to part p's outputs only

:func:`run_parts` starts the same driver on ``numba.get_num_threads()``
threads, the calling thread among them, and waits for all of them. So the
parts are handed out one at a time as each thread frees up (what
``numba.parallel_chunksize(1)`` did for the ``prange`` loops this replaces:
a core slowed by other work does not hold up the pass), without a Python
call per part. Which thread ran which part changes no result: each part's
outputs are its own, and the caller reduces them in a fixed order.

Why threads and not ``prange``: a ``parallel=True`` driver is compiled
through Numba's parfor passes, which outline the loop body into a gufunc and
compile it again with everything it calls; for the default fit's pass that
was most of a 13 s compile.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_pool = None
_pool_lock = threading.Lock()


@intrinsic
def next_part(typingctx, counter):
    """``counter[0]`` before atomically adding 1 to it (sequentially consistent)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.atomic_rmw("add", arr.data, ir.Constant(ir.IntType(64), 1), "seq_cst")

    return types.int64(counter), codegen


def _forget_pool():
    """A forked child has none of the parent's threads: start a new pool there."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def _executor():
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="fastem")
        return _pool


def run_parts(driver, n_parts, *args):
    """Run ``driver(*args, counter)`` on up to ``numba.get_num_threads()``
    threads until the counter passes ``n_parts``; exceptions are raised here."""
    counter = np.zeros(1, dtype=np.int64)
    helpers = min(numba.get_num_threads(), n_parts) - 1
    futures = [_executor().submit(driver, *args, counter) for _ in range(helpers)]
    try:
        driver(*args, counter)
    finally:
        for f in futures:
            f.result()
