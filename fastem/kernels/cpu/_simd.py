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


def _load_codegen(vty):
    def codegen(context, builder, sig, args):
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [idx]), _llvm_vector(vty).as_pointer())
        return builder.load(ptr, align=vty.dtype.bitwidth // 8)
    return codegen


def _splat_codegen(vty):
    def codegen(context, builder, sig, args):
        lvty = _llvm_vector(vty)
        vec = builder.insert_element(ir.Constant(lvty, ir.Undefined), args[0],
                                     ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(vec, vec, ir.Constant(
            ir.VectorType(ir.IntType(32), vty.lanes), [0] * vty.lanes))
    return codegen


def _zero_codegen(vty):
    def codegen(context, builder, sig, args):
        return ir.Constant(_llvm_vector(vty), [0.0] * vty.lanes)
    return codegen


@intrinsic
def vload(typingctx, arr, index):
    """Lanes ``arr.flat[index:index + lanes]`` of a C-contiguous float array."""
    vty = _vector_of_array(arr)
    if vty is None or not isinstance(index, types.Integer):
        return None
    return vty(arr, index), _load_codegen(vty)


@intrinsic
def vload_as(typingctx, arr, index, like):
    """:func:`vload` of as many lanes as the vector ``like`` has: one
    register's (:func:`vzero`), or two registers' (:func:`wzero`)."""
    vty = _vector_of_array(arr)
    if not (vty is not None and isinstance(like, VectorType) and like.dtype == vty.dtype
            and isinstance(index, types.Integer)):
        return None
    return like(arr, index, like), _load_codegen(like)


@intrinsic
def vstore(typingctx, arr, index, vec):
    """``arr.flat[index:index + lanes] = vec`` into a C-contiguous float array
    of the vector's dtype (a vector of one register's lanes or two)."""
    vty = _vector_of_array(arr)
    if not (vty is not None and isinstance(vec, VectorType) and vec.dtype == vty.dtype
            and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        idx = context.cast(builder, args[1], sig.args[1], types.intp)
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [idx]), _llvm_vector(vec).as_pointer())
        builder.store(args[2], ptr, align=vec.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(arr, index, vec), codegen


@intrinsic
def vsplat(typingctx, x):
    """The float ``x`` in every lane (float64 -> f64x8, float32 -> f32x16)."""
    vty = _VECTOR_OF.get(x)
    if vty is None:
        return None
    return vty(x), _splat_codegen(vty)


@intrinsic
def vsplat_as(typingctx, x, like):
    """The float ``x``, converted to ``like``'s dtype, in every lane of a
    vector of ``like``'s type."""
    if not (isinstance(like, VectorType) and isinstance(x, types.Float)):
        return None
    return like(like.dtype, like), _splat_codegen(like)


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


def _pair_masks(n, h):
    """Shuffle masks of two ``n``-lane vectors ``a``, ``b`` whose lane groups
    of width ``h`` alternate between ``a`` and ``b``: ``lo`` takes the even
    groups of each, ``hi`` the odd ones. Adding the two shuffles sums adjacent
    groups (:func:`vsum8`); keeping both is one round of a transpose
    (:func:`vtranspose`)."""
    lo, hi = [], []
    for base in range(0, n, 2 * h):
        lo += [base + i for i in range(h)] + [n + base + i for i in range(h)]
        hi += [base + h + i for i in range(h)] + [n + base + h + i for i in range(h)]
    return lo, hi


@intrinsic
def vtranspose(typingctx, src, src_index, src_stride, dst, dst_index, dst_stride):
    """A square block of ``n x n`` values (``n`` the lanes of the arrays'
    dtype) copied transposed: row ``r`` of the block, ``src.flat[src_index +
    r * src_stride:][:n]``, becomes column ``r`` of the block whose rows are
    ``dst.flat[dst_index + c * dst_stride:][:n]``. ``n`` loads, ``log2(n)``
    rounds of two-vector shuffles (vectors ``h`` apart exchange their lane
    groups of width ``h``) and ``n`` stores; no bounds checks.

    Why: the same copy as a loop over the block's columns, each gathering
    strided values, is what LLVM makes of it, and on Zen 4 it took a quarter
    of the diagonal incomplete-data pass (``kernels/cpu/missing.py``)."""
    vty = _vector_of_array(src)
    if vty is None or _vector_of_array(dst) != vty or not all(
            isinstance(x, types.Integer) for x in (src_index, src_stride, dst_index, dst_stride)):
        return None
    n = vty.lanes
    rounds = []
    h = 1
    while h < n:
        rounds.append((h, *_pair_masks(n, h)))
        h *= 2

    def codegen(context, builder, sig, args):
        lvty = _llvm_vector(vty)
        align = vty.dtype.bitwidth // 8

        def pointer(arr_ty, arr, index, stride, r):
            data = context.make_array(arr_ty)(context, builder, arr).data
            at = builder.add(index, builder.mul(stride, ir.Constant(index.type, r)))
            return builder.bitcast(builder.gep(data, [at]), lvty.as_pointer())

        si, ss, di, ds = (context.cast(builder, args[i], sig.args[i], types.intp)
                          for i in (1, 2, 4, 5))
        v = [builder.load(pointer(sig.args[0], args[0], si, ss, r), align=align)
             for r in range(n)]
        for h, lo, hi in rounds:
            for p in range(n):
                if p & h == 0:
                    v[p], v[p + h] = (_shuffle(builder, v[p], v[p + h], lo),
                                      _shuffle(builder, v[p], v[p + h], hi))
        for c in range(n):
            builder.store(v[c], pointer(sig.args[3], args[3], di, ds, c), align=align)
        return context.get_dummy_value()

    return types.none(src, src_index, src_stride, dst, dst_index, dst_stride), codegen


@intrinsic
def _pair_sums(typingctx, a, b, level):
    """One level of :func:`vsum8`'s transpose-and-add tree (``level`` 1, 2 or 4)."""
    if not (isinstance(a, VectorType) and a == b and isinstance(level, types.IntegerLiteral)):
        return None
    lo, hi = _pair_masks(a.lanes, level.literal_value)

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
    return vty(like), _zero_codegen(vty)


@intrinsic
def wzero(typingctx, like):
    """A vector of zeros of two registers' lanes (``f64x16`` for a float64
    array ``like``). Handed to :func:`vload_as` and :func:`vsplat_as` as the
    type to work in, it makes each statement of a kernel two independent
    instructions: for code bound by the latency of short dependency chains
    (``kernels/cpu/missing.py``)."""
    vty = _vector_of_array(like)
    if vty is None:
        return None
    wide = VectorType(vty.dtype, 2 * vty.lanes)
    return wide(like), _zero_codegen(wide)


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
    """Lanes of the vector :func:`vload` gives for array ``arr``, or of the
    vector ``arr`` (a compile-time constant)."""
    raise NotImplementedError("lanes() is a jitted helper")


@overload(lanes, inline="always")
def _lanes(arr):
    n = arr.lanes if isinstance(arr, VectorType) else _vector_of_array(arr).lanes

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
