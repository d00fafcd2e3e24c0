"""Explicit 512-bit vector types for the CPU kernels, and dtype-generic scalars.

Why: LLVM vectorises a reduction over a block's points by itself, but it
keeps one vector accumulator per reduction and ends each with a horizontal
sum (3 shuffles and 3 adds). In the diagonal statistics every (component,
feature) entry is two reductions of only a few vectors per block, so those
horizontal sums cost about as much as the arithmetic, and LLVM does not
register-tile across entries. Numba has no SIMD type to write anything else,
so this module adds two: ``f64x8`` and ``f32x16``, held in LLVM as
``<8 x double>`` and ``<16 x float>`` (one AVX-512 register; two AVX2
registers elsewhere, which LLVM handles). The operations take either type,
so one kernel source serves float64 and float32 compute: :func:`vload` of a
float32 array gives an ``f32x16`` and twice the points per instruction. With
them a kernel holds a tile of accumulators as vectors and reduces eight of
them at once (:func:`vsum8`: 14 shuffles and 7 adds instead of 8 x 6
operations for ``f64x8``; one more shuffle-and-add level for ``f32x16``).

All operations are plain IEEE operations in a fixed order, so results are
deterministic. ``vload`` does no bounds checking: callers index within the
array (the block buffers hold a multiple of 16 points per row).

The module also holds the scalar helpers that make a kernel's source
dtype-generic (:func:`like`, :func:`lanes`, the bit casts): Numba types a
literal such as ``0.5`` as float64, which would silently widen float32 work.

Numba's on-disk cache checks only the source file of a cached kernel, not the
modules it inlines: after editing this file, delete
``fastem/kernels/cpu/__pycache__``.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model
from numba.np.numpy_support import as_dtype

from ._jit import helper

#: Lanes of the float64 vector type (what callers that only use float64 need).
LANES = 8


class VectorType(types.Type):
    """Numba type of a 512-bit vector of ``dtype`` (float64 x 8 or float32 x 16)."""

    def __init__(self, dtype, lanes):
        self.dtype = dtype
        self.lanes = lanes
        super().__init__(name=f"{dtype}x{lanes}")


f64x8 = VectorType(types.float64, 8)
f32x16 = VectorType(types.float32, 16)
_VECTOR_OF = {types.float64: f64x8, types.float32: f32x16}
_LLVM_ELEMENT = {types.float64: ir.DoubleType(), types.float32: ir.FloatType()}


def _llvm_vector(vty):
    return ir.VectorType(_LLVM_ELEMENT[vty.dtype], vty.lanes)


@register_model(VectorType)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _llvm_vector(fe_type))


def _vector_of_array(arr):
    """The vector type loaded from ``arr``, or None if it is not a C float array."""
    if isinstance(arr, types.Array) and arr.layout == "C":
        return _VECTOR_OF.get(arr.dtype)
    return None


@intrinsic
def vload(typingctx, arr, index):
    """Lanes ``arr.flat[index:index + lanes]`` of a C-contiguous float array."""
    vty = _vector_of_array(arr)
    if vty is None or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [idx]), _llvm_vector(vty).as_pointer())
        return builder.load(ptr, align=vty.dtype.bitwidth // 8)

    return vty(arr, index), codegen


@intrinsic
def vstore(typingctx, arr, index, vec):
    """``arr.flat[index:index + lanes] = vec`` into a C-contiguous float array
    of the vector's dtype."""
    vty = _vector_of_array(arr)
    if vty is None or vty != vec or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [idx]), _llvm_vector(vty).as_pointer())
        builder.store(args[2], ptr, align=vty.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(arr, index, vec), codegen


@intrinsic
def vsplat(typingctx, x):
    """The float ``x`` in every lane (float64 -> f64x8, float32 -> f32x16)."""
    vty = _VECTOR_OF.get(x)
    if vty is None:
        return None

    def codegen(context, builder, sig, args):
        lvty = _llvm_vector(vty)
        vec = builder.insert_element(ir.Constant(lvty, ir.Undefined), args[0],
                                     ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(vec, vec, ir.Constant(
            ir.VectorType(ir.IntType(32), vty.lanes), [0] * vty.lanes))

    return vty(x), codegen


def _binary(op):
    @intrinsic
    def impl(typingctx, a, b):
        if not (isinstance(a, VectorType) and a == b):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(args[0], args[1])

        return a(a, b), codegen

    return impl


vadd = _binary("fadd")
vsub = _binary("fsub")
vmul = _binary("fmul")
vdiv = _binary("fdiv")


@intrinsic
def vsqrt(typingctx, a):
    """The square root of every lane (IEEE, correctly rounded)."""
    if not isinstance(a, VectorType):
        return None
    suffix = f"v{a.lanes}f{a.dtype.bitwidth}"

    def codegen(context, builder, sig, args):
        lvty = _llvm_vector(a)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lvty, [lvty]),
                                            f"llvm.sqrt.{suffix}")
        return builder.call(fn, args)

    return a(a), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, rounded once."""
    if not (isinstance(a, VectorType) and a == b == c):
        return None
    suffix = f"v{a.lanes}f{a.dtype.bitwidth}"

    def codegen(context, builder, sig, args):
        lvty = _llvm_vector(a)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lvty, [lvty] * 3),
                                            f"llvm.fma.{suffix}")
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def vlane(typingctx, a, lane):
    """Lane ``lane`` of ``a`` as a float."""
    if not (isinstance(a, VectorType) and isinstance(lane, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        idx = context.cast(builder, args[1], sig.args[1], types.int32)
        return builder.extract_element(args[0], idx)

    return a.dtype(a, lane), codegen


def _shuffle(builder, a, b, mask):
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), len(mask)),
                                                    mask))


@intrinsic
def _pair_sums(typingctx, a, b, level):
    """One level of :func:`vsum8`'s transpose-and-add tree (``level`` 1, 2 or 4)."""
    if not (isinstance(a, VectorType) and a == b and isinstance(level, types.IntegerLiteral)):
        return None
    h = level.literal_value
    n = a.lanes
    # Lane groups of width h alternate between a and b; adding the two
    # shuffles sums adjacent groups of width h.
    lo, hi = [], []
    for base in range(0, n, 2 * h):
        lo += [base + i for i in range(h)] + [n + base + i for i in range(h)]
        hi += [base + h + i for i in range(h)] + [n + base + h + i for i in range(h)]

    def codegen(context, builder, sig, args):
        return builder.fadd(_shuffle(builder, args[0], args[1], lo),
                            _shuffle(builder, args[0], args[1], hi))

    return a(a, b, level), codegen


@intrinsic
def _fold_to_eight(typingctx, a):
    """Lanes ``i`` and ``i + 8`` added into lane ``i`` (identity on ``f64x8``)."""
    if not isinstance(a, VectorType):
        return None
    n = a.lanes

    def codegen(context, builder, sig, args):
        if n == 8:
            return args[0]
        upper = [8 + i for i in range(8)] * (n // 8)
        return builder.fadd(args[0], _shuffle(builder, args[0], args[0], upper))

    return a(a), codegen


@helper
def vsum8(v0, v1, v2, v3, v4, v5, v6, v7):
    """The horizontal sums of eight vectors: lane ``i`` of the result is the
    sum of the lanes of ``v_i``, always added in the same tree order."""
    a = _pair_sums(v0, v1, 1)
    b = _pair_sums(v2, v3, 1)
    c = _pair_sums(v4, v5, 1)
    e = _pair_sums(v6, v7, 1)
    return _fold_to_eight(_pair_sums(_pair_sums(a, b, 2), _pair_sums(c, e, 2), 4))


def _add_lanes_into(width):
    """An intrinsic ``f(arr, index, vec, first)``: ``arr.flat[index:index +
    width] += lanes first .. first + width - 1 of vec``, the lanes widened to
    ``arr``'s dtype (as a scalar ``+=`` would), with one vector load, add and
    store into the C-contiguous float array."""

    @intrinsic
    def impl(typingctx, arr, index, vec, first):
        if not (isinstance(arr, types.Array) and arr.layout == "C" and arr.dtype in _LLVM_ELEMENT
                and isinstance(index, types.Integer) and isinstance(vec, VectorType)
                and isinstance(first, types.IntegerLiteral)
                and arr.dtype.bitwidth >= vec.dtype.bitwidth):
            return None
        f0 = first.literal_value
        dst = ir.VectorType(_LLVM_ELEMENT[arr.dtype], width)

        def codegen(context, builder, sig, args):
            idx = context.cast(builder, args[1], sig.args[1], types.intp)
            data = context.make_array(sig.args[0])(context, builder, args[0]).data
            part = _shuffle(builder, args[2], args[2], list(range(f0, f0 + width)))
            if vec.dtype != arr.dtype:
                part = builder.fpext(part, dst)
            ptr = builder.bitcast(builder.gep(data, [idx]), dst.as_pointer())
            align = arr.dtype.bitwidth // 8
            builder.store(builder.fadd(builder.load(ptr, align=align), part), ptr, align=align)
            return context.get_dummy_value()

        return types.none(arr, index, vec, first), codegen

    return impl


#: ``arr.flat[index:index + 4] += lanes first .. first + 3 of vec`` (see
#: :func:`_add_lanes_into`): a run of 4 entries of a second-moment row.
vadd4_into = _add_lanes_into(4)
#: The same for 2 lanes: a pair of features of one component (diag statistics).
vadd2_into = _add_lanes_into(2)


@intrinsic
def vzero(typingctx, like):
    """A vector of zeros of the type :func:`vload` gives for array ``like``."""
    vty = _vector_of_array(like)
    if vty is None:
        return None

    def codegen(context, builder, sig, args):
        return ir.Constant(_llvm_vector(vty), [0.0] * vty.lanes)

    return vty(like), codegen


# ----------------------------------------------------------------------------
# dtype-generic scalars
# ----------------------------------------------------------------------------

def like(value, arr):
    """``value`` as a scalar of ``arr``'s dtype (inside jitted code only)."""
    raise NotImplementedError("like() is a jitted helper")


@overload(like, inline="always")
def _like(value, arr):
    cast = as_dtype(arr.dtype if isinstance(arr, types.Array) else arr).type

    def impl(value, arr):
        return cast(value)

    return impl


def lanes(arr):
    """Lanes of the vector :func:`vload` gives for ``arr`` (a compile-time constant)."""
    raise NotImplementedError("lanes() is a jitted helper")


@overload(lanes, inline="always")
def _lanes(arr):
    n = _vector_of_array(arr).lanes

    def impl(arr):
        return n

    return impl


def _bit_cast(src, dst):
    """A bit cast from ``src`` to ``dst``; an integer source of another width
    (Numba widens int32 arithmetic to int64) is first converted to ``src``."""
    @intrinsic
    def impl(typingctx, x):
        if not (x == src or (isinstance(src, types.Integer) and isinstance(x, types.Integer))):
            return None

        def codegen(context, builder, sig, args):
            v = context.cast(builder, args[0], sig.args[0], src)
            return builder.bitcast(v, context.get_value_type(dst))

        return dst(x), codegen

    return impl


#: Scalar bit casts between a float and the integer of its width (LLVM
#: vectorises them; Numba has no scalar ``view``).
f64_from_bits = _bit_cast(types.int64, types.float64)
bits_from_f64 = _bit_cast(types.float64, types.int64)
f32_from_bits = _bit_cast(types.int32, types.float32)
bits_from_f32 = _bit_cast(types.float32, types.int32)
