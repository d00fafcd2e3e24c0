"""An explicit 8-lane float64 vector type for the CPU kernels.

Why: LLVM vectorises a reduction over a block's points by itself, but it
keeps one vector accumulator per reduction and ends each with a horizontal
sum (3 shuffles and 3 adds). In the diagonal statistics every (component,
feature) entry is two reductions of only 8 vectors per block, so those
horizontal sums cost about as much as the arithmetic, and LLVM does not
register-tile across entries. Numba has no SIMD type to write anything else,
so this module adds one: ``f64x8``, held in LLVM as ``<8 x double>`` (one
AVX-512 register; two AVX2 or four SSE registers elsewhere, which LLVM
handles). With it a kernel holds a tile of accumulators as vectors and
reduces eight of them at once (:func:`vsum8`: 14 shuffles and 7 adds instead
of 8 x 6 operations).

All operations are plain IEEE operations in a fixed order, so results are
deterministic. ``vload`` does no bounds checking: callers index within the
array (the block buffers hold a multiple of 8 points per row).

Numba's on-disk cache checks only the source file of a cached kernel, not the
modules it inlines: after editing this file, delete
``fastem/kernels/cpu/__pycache__``.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from ...config import HELPER_JIT_OPTIONS

LANES = 8


class F64x8Type(types.Type):
    """Numba type of an ``<8 x double>`` value."""

    def __init__(self):
        super().__init__(name="f64x8")


f64x8 = F64x8Type()
_VEC = ir.VectorType(ir.DoubleType(), LANES)


@register_model(F64x8Type)
class _F64x8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VEC)


def _is_f64_array(arr):
    return isinstance(arr, types.Array) and arr.dtype == types.float64 and arr.layout == "C"


def _element_pointer(context, builder, arrty, arr, index):
    """Pointer to ``<8 x double>`` at flat element ``index`` of a C-contiguous array."""
    data = context.make_array(arrty)(context, builder, arr).data
    ptr = builder.gep(data, [index])
    return builder.bitcast(ptr, _VEC.as_pointer())


@intrinsic
def vload(typingctx, arr, index):
    """Lanes ``arr.flat[index:index + 8]`` of a C-contiguous float64 array."""
    if not (_is_f64_array(arr) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        ptr = _element_pointer(context, builder, sig.args[0], args[0], idx)
        return builder.load(ptr, align=8)

    return f64x8(arr, index), codegen


@intrinsic
def vsplat(typingctx, x):
    """The float ``x`` in every lane."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, sig, args):
        v = context.cast(builder, args[0], sig.args[0], types.float64)
        vec = builder.insert_element(ir.Constant(_VEC, ir.Undefined), v,
                                     ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(vec, vec, ir.Constant(ir.VectorType(ir.IntType(32), LANES),
                                                            [0] * LANES))

    return f64x8(x), codegen


def _binary(op):
    @intrinsic
    def impl(typingctx, a, b):
        if not (a == f64x8 and b == f64x8):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(args[0], args[1])

        return f64x8(a, b), codegen

    return impl


vadd = _binary("fadd")
vsub = _binary("fsub")
vmul = _binary("fmul")


def _vector_intrinsic(builder, name, n_args):
    fnty = ir.FunctionType(_VEC, [_VEC] * n_args)
    return cgutils.get_or_insert_function(builder.module, fnty, name)


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, rounded once."""
    if not (a == f64x8 and b == f64x8 and c == f64x8):
        return None

    def codegen(context, builder, sig, args):
        return builder.call(_vector_intrinsic(builder, "llvm.fma.v8f64", 3), args)

    return f64x8(a, b, c), codegen


@intrinsic
def f64_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bit pattern is the int64 ``bits`` (a scalar
    bit cast, which LLVM vectorises; Numba has no scalar ``view``)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(bits), codegen


@intrinsic
def vlane(typingctx, a, lane):
    """Lane ``lane`` of ``a`` as a float."""
    if not (a == f64x8 and isinstance(lane, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        idx = context.cast(builder, args[1], sig.args[1], types.int32)
        return builder.extract_element(args[0], idx)

    return types.float64(a, lane), codegen


def _shuffle(builder, a, b, mask):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), LANES), mask))


@intrinsic
def _pair_sums(typingctx, a, b, level):
    """One level of :func:`vsum8`'s transpose-and-add tree (``level`` 1, 2 or 4)."""
    if not (a == f64x8 and b == f64x8 and isinstance(level, types.IntegerLiteral)):
        return None
    h = level.literal_value
    # Lane groups of width h alternate between a and b; adding the two
    # shuffles sums adjacent groups of width h.
    lo, hi = [], []
    for base in range(0, LANES, 2 * h):
        lo += [base + i for i in range(h)] + [LANES + base + i for i in range(h)]
        hi += [base + h + i for i in range(h)] + [LANES + base + h + i for i in range(h)]

    def codegen(context, builder, sig, args):
        return builder.fadd(_shuffle(builder, args[0], args[1], lo),
                            _shuffle(builder, args[0], args[1], hi))

    return f64x8(a, b, level), codegen


@njit(**HELPER_JIT_OPTIONS)
def vsum8(v0, v1, v2, v3, v4, v5, v6, v7):
    """The horizontal sums of eight vectors: lane ``i`` of the result is the
    sum of the lanes of ``v_i``, always added in the same tree order."""
    a = _pair_sums(v0, v1, 1)
    b = _pair_sums(v2, v3, 1)
    c = _pair_sums(v4, v5, 1)
    e = _pair_sums(v6, v7, 1)
    return _pair_sums(_pair_sums(a, b, 2), _pair_sums(c, e, 2), 4)


@njit(**HELPER_JIT_OPTIONS)
def vzero():
    return vsplat(0.0)
