"""numba's CUDA simulator as the tests and ``benchmarks/gpu_check.py --tiny``
run it: with a block's threads interleaved finely.

The simulator (``NUMBA_ENABLE_CUDASIM=1``) runs each thread of a block as a
Python thread, and a busy loop in the launching thread polls them until all
wait at a barrier or have ended. At Python's default switch interval (5 ms)
that loop holds the interpreter for 5 ms at a time, and a thread runs for 5
ms between switches, so two things go wrong:

- it is slow: the loop's turns take most of the time, and the CUDA tests
  ran about 4x longer than at 20 us (tests/cuda in one process: 210 s
  against 49 s, on a 2-core AMD EPYC Zen 4);
- it hides races: a thread usually runs from one barrier to the next
  without another thread of its block running in between, so two threads
  writing one value between barriers rarely collide. At 20 us they do:
  this is how the incomplete-data kernel's race on its second moments
  (``kernels/cuda/missing.add_conditional``) was found, and every CUDA test
  now runs this way.

A short interval makes a race in the simulator's own code likelier: its
static ``cuda.shared.array`` looks up the block's array and creates it if
absent in two steps, so two threads switched between the steps would each
create one and no longer share it. It was not seen (6,000 blocks of 16
threads at 20 us), but a test failing by that chance would be a flaky one,
so :func:`interleave_threads` makes the lookup atomic.
"""

import sys
import threading

#: Python's thread switch interval under the simulator, seconds.
SWITCH_INTERVAL = 2e-5


def interleave_threads():
    """Switch threads every :data:`SWITCH_INTERVAL` and make the simulator's
    shared-array allocation atomic. Call it only in a process that runs the
    simulator (it changes the interpreter's switch interval for the whole
    process); calling it again does nothing more."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:  # numba-cuda 0.30's layout; a later one may have moved or fixed it
        from numba.cuda.simulator.kernelapi import FakeCUDAShared as shared
        allocate = shared.array
    except (ImportError, AttributeError):
        return
    if getattr(allocate, "_fastem_atomic", False):
        return
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        with lock:
            return allocate(self, shape, dtype, alignment)

    array._fastem_atomic = True
    shared.array = array
