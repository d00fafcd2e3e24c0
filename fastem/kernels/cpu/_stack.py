"""Fixed-size scratch buffers on the stack, for the per-block accumulators.

Why: a buffer from ``np.empty`` lives on the heap, and LLVM cannot prove that
stores into it do not alias the loads from the other heap buffers of a
kernel. An accumulator such as ``t[i] += u * diff[b, i]`` is then loaded and
stored back on every pass of the enclosing loop, and the kernel runs at the
speed of the store port rather than the FMA units. A stack buffer whose
address never escapes cannot alias anything, so LLVM keeps it in vector
registers across the loop.

Use only for small buffers whose size is a compile-time constant (the block
size), and never return them or store them in another array: the memory is
the calling function's frame.
"""

import numpy as np
from llvmlite import ir
from numba import carray, njit, types
from numba.extending import intrinsic

from ...config import HELPER_JIT_OPTIONS


@intrinsic
def _stack_pointer(typingctx, n, dtype):
    """Pointer to ``n`` (a literal int) elements of ``dtype``, in the entry block's frame."""
    if not isinstance(n, types.IntegerLiteral):
        return None
    size = n.literal_value
    elty = dtype.dtype  # a NumberClass (np.float64) or an array: both have .dtype

    def codegen(context, builder, signature, args):
        lty = context.get_data_type(elty)
        with builder.goto_entry_block():  # one allocation per call frame, not per loop trip
            ptr = builder.alloca(ir.ArrayType(lty, size))
            ptr.align = 64
        return builder.bitcast(ptr, lty.as_pointer())

    return types.CPointer(elty)(n, dtype), codegen


@njit(**HELPER_JIT_OPTIONS)
def stack_f64(n):
    """Uninitialised ``(n,)`` float64 scratch on the stack; ``n`` must be a constant."""
    return carray(_stack_pointer(n, np.float64), n)


@njit(**HELPER_JIT_OPTIONS)
def stack_like(n, arr):
    """Uninitialised ``(n,)`` scratch of ``arr``'s dtype on the stack; ``n`` a constant."""
    return carray(_stack_pointer(n, arr), n)
