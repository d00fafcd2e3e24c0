"""Fixed-size scratch buffers on the stack, for the per-block accumulators.

Why: a buffer from ``np.empty`` lives on the heap, and LLVM cannot prove that
stores into it do not alias the loads from the other heap buffers of a
kernel. An accumulator such as ``t[i] += u * diff[b, i]`` is then loaded and
stored back on every pass of the enclosing loop, and the kernel runs at the
speed of the store port rather than the FMA units. A stack buffer whose
address never escapes cannot alias anything, so LLVM keeps it in vector
registers across the loop.

Use only for small buffers whose size is a compile-time constant (one
register panel), and never return them or store them in another array: the memory is
the calling function's frame.
"""

from llvmlite import ir
from numba import carray, types
from numba.extending import intrinsic, overload

from ...config import BLOCK_ROWS


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


def panel_rows(arr):
    """Points in one register panel: 8 vectors of 512 bits of ``arr``'s dtype
    (64 float64, 128 float32), a compile-time constant. Jitted code only.

    A kernel that keeps a vector accumulator per point (the log-densities)
    walks its block panel by panel; three such accumulators are then 24
    AVX-512 registers whatever the dtype, whereas the block, which the
    reductions over points want long, is ``BLOCK_ROWS`` points.
    """
    raise NotImplementedError("panel_rows() is a jitted helper")


def stack_panel(arr):
    """Uninitialised ``(panel_rows(arr),)`` scratch of ``arr``'s dtype on the
    stack. Jitted code only."""
    raise NotImplementedError("stack_panel() is a jitted helper")


def _panel_size(arr):
    n = 4096 // arr.dtype.bitwidth
    if BLOCK_ROWS % n:
        raise ValueError(f"BLOCK_ROWS={BLOCK_ROWS} is not a whole number of {n}-point panels")
    return n


@overload(panel_rows, inline="always")
def _panel_rows(arr):
    n = _panel_size(arr)
    return lambda arr: n


@overload(stack_panel, inline="always")
def _stack_panel(arr):
    n = _panel_size(arr)
    return lambda arr: carray(_stack_pointer(n, arr), n)
