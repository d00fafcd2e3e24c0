"""The explicit-vector primitives of the CPU kernels (``kernels/cpu/_simd.py``)
and the vectorisable exponential and logarithm (``kernels/cpu/_elementary.py``),
against NumPy."""

import numpy as np
import pytest
from numba import njit

from fastem.kernels.cpu._simd import (LANES, bits_from_f32, f32_from_bits, f64_from_bits, lanes,
                                      like, vadd, vadd2_into, vadd4_into, vdiv, vfma, vlane, vload,
                                      vload_as, vmul, vsplat, vsplat_as, vsqrt, vstore, vsub, vsum8,
                                      vtranspose, vzero, wzero)
from fastem.kernels.cpu._elementary import fast_exp, log_of_product, split_product


@njit
def _lanes(v, out, row):
    for i in range(out.shape[1]):
        out[row, i] = vlane(v, i)


@njit
def _elementwise(a, b, c, out):
    x = vload(a, 0)
    y = vload(b, 0)
    z = vload(c, 0)
    _lanes(vadd(x, y), out, 0)
    _lanes(vsub(x, y), out, 1)
    _lanes(vmul(x, y), out, 2)
    _lanes(vfma(x, y, z), out, 3)
    _lanes(vsplat(a[3]), out, 4)
    _lanes(vzero(a), out, 5)
    _lanes(vload(a, 5), out, 6)  # an unaligned offset inside the array


@njit
def _sums(m, out):
    _lanes(vsum8(vload(m, 0), vload(m, 8), vload(m, 16), vload(m, 24),
                 vload(m, 32), vload(m, 40), vload(m, 48), vload(m, 56)), out, 0)


@njit
def _from_bits(bits, out):
    for i in range(bits.size):
        out[i] = f64_from_bits(bits[i])


@njit
def _bits32(x, out):
    for i in range(x.size):
        out[i] = f32_from_bits(bits_from_f32(x[i]))


@njit
def _typed(arr):
    return like(0.1, arr), lanes(arr)


@njit
def _exp(x, out):
    for i in range(x.size):
        out[i] = fast_exp(x[i])


@pytest.mark.parametrize("dtype, n", [(np.float64, 8), (np.float32, 16)])
def test_vector_type_follows_the_array_dtype(dtype, n):
    """float64 arrays load f64x8 and float32 arrays f32x16: one kernel source,
    twice the lanes in float32."""
    x = np.arange(32, dtype=dtype)
    value, width = _typed(x)
    assert width == n
    assert value == dtype(0.1)  # rounded once, to the array's dtype
    assert (value == 0.1) == (dtype == np.float64)
    out = np.empty((7, n), dtype=dtype)
    _elementwise(x, x, x, out)
    np.testing.assert_array_equal(out[0], 2 * x[:n])
    np.testing.assert_array_equal(out[6], x[5:5 + n])
    m = np.random.default_rng(3).normal(size=(8, n)).astype(dtype)
    sums = np.empty((1, 8), dtype=dtype)
    _sums_any(m.ravel(), n, sums)
    np.testing.assert_allclose(sums[0], m.astype(np.float64).sum(axis=1), rtol=1e-5, atol=1e-5)
    ints = np.arange(8 * n, dtype=dtype).reshape(8, n)
    _sums_any(ints.ravel(), n, sums)
    np.testing.assert_array_equal(sums[0], ints.sum(axis=1))


@njit
def _sums_any(m, n, out):
    _lanes(vsum8(vload(m, 0), vload(m, n), vload(m, 2 * n), vload(m, 3 * n),
                 vload(m, 4 * n), vload(m, 5 * n), vload(m, 6 * n), vload(m, 7 * n)), out, 0)


@njit
def _divide_root_store(a, b, out):
    vstore(out, 0, vdiv(vload(a, 0), vload(b, 0)))
    vstore(out, 19, vsqrt(vload(b, 0)))  # an unaligned offset


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_division_square_root_and_store_are_ieee(dtype):
    """vdiv and vsqrt are correctly rounded, so they equal NumPy's bit for
    bit; vstore writes exactly the vector's lanes and nothing around them."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=16).astype(dtype)
    b = rng.uniform(0.1, 10.0, size=16).astype(dtype)
    out = np.full(40, -7.0, dtype=dtype)
    _divide_root_store(a, b, out)
    n = 8 if dtype == np.float64 else 16
    np.testing.assert_array_equal(out[:n], a[:n] / b[:n])
    np.testing.assert_array_equal(out[19:19 + n], np.sqrt(b[:n]))
    untouched = np.ones(40, dtype=bool)
    untouched[:n] = untouched[19:19 + n] = False
    assert (out[untouched] == -7.0).all()


def test_f32_bit_casts_round_trip():
    x = np.array([0.0, -0.0, 1.0, -2.5, 1e-40, np.inf, 3.4e38], dtype=np.float32)
    out = np.empty_like(x)
    _bits32(x, out)
    np.testing.assert_array_equal(out.view(np.int32), x.view(np.int32))


def test_elementwise_operations_match_numpy():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 16))
    out = np.empty((7, LANES))
    _elementwise(a, b, c, out)
    a8, b8, c8 = a[:8], b[:8], c[:8]
    np.testing.assert_array_equal(out[0], a8 + b8)
    np.testing.assert_array_equal(out[1], a8 - b8)
    np.testing.assert_array_equal(out[2], a8 * b8)
    # vfma rounds once, so it may differ from NumPy's two roundings in the
    # last bit (the single rounding is checked exactly below)
    np.testing.assert_allclose(out[3], a8 * b8 + c8, rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(out[4], np.full(LANES, a[3]))
    np.testing.assert_array_equal(out[5], np.zeros(LANES))
    np.testing.assert_array_equal(out[6], a[5:13])


def test_fma_rounds_once():
    # (1 + 2**-30)**2 - (1 + 2**-29) is 2**-60 exactly; a separate multiply
    # would round it away.
    x = np.full(16, 1.0 + 2.0**-30)
    c = np.full(16, -(1.0 + 2.0**-29))
    out = np.empty((7, LANES))
    _elementwise(x, x, c, out)
    np.testing.assert_array_equal(out[3], np.full(LANES, 2.0**-60))


def test_vsum8_lane_i_is_the_sum_of_vector_i():
    m = np.random.default_rng(1).normal(size=(8, 8))
    out = np.empty((1, LANES))
    _sums(m.ravel(), out)
    np.testing.assert_allclose(out[0], m.sum(axis=1), rtol=1e-14, atol=1e-14)
    # exactly representable sums are exact
    ints = np.arange(64, dtype=np.float64).reshape(8, 8)
    _sums(ints.ravel(), out)
    np.testing.assert_array_equal(out[0], ints.sum(axis=1))


def test_f64_from_bits_is_a_bit_cast():
    x = np.array([0.0, -0.0, 1.0, -2.5, 1e-310, np.inf, 2.0**-1022, 123456.789])
    out = np.empty_like(x)
    _from_bits(x.view(np.int64), out)
    np.testing.assert_array_equal(out.view(np.int64), x.view(np.int64))


def test_fast_exp_matches_numpy():
    x = np.concatenate([np.linspace(-708.0, 709.0, 20001),
                        np.random.default_rng(2).uniform(-50, 0, 20000),
                        [0.0, -0.0, 1e-300, -1e-300, 0.5 * np.log(2), -0.5 * np.log(2)]])
    out = np.empty_like(x)
    _exp(x, out)
    np.testing.assert_allclose(out, np.exp(x), rtol=1e-15, atol=0)


@pytest.mark.parametrize("x", [-np.inf, -1e300, -745.2, -709.0, -708.0001])
def test_fast_exp_is_exactly_zero_below_its_range(x):
    out = np.empty(1)
    _exp(np.array([x]), out)
    assert out[0] == 0.0


def test_float32_fast_exp_matches_numpy():
    """The float32 exponential is accurate to float32's rounding over the range
    the responsibilities use (x <= 0) and beyond, and exactly 0 below -87."""
    x = np.concatenate([np.linspace(-87.0, 88.0, 20001),
                        np.random.default_rng(4).uniform(-30, 0, 20000),
                        [0.0, -0.0, 1e-30, -1e-30]]).astype(np.float32)
    out = np.empty_like(x)
    _exp(x, out)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.exp(x.astype(np.float64)), rtol=4e-7, atol=0)
    below = np.array([-np.inf, -1e30, -104.0, -87.01], dtype=np.float32)
    out = np.empty_like(below)
    _exp(below, out)
    np.testing.assert_array_equal(out, 0.0)


@njit
def _add_into(target, src, index):
    v = vload(src, 0)
    vadd4_into(target, index, v, 0)
    vadd4_into(target, index + 7, v, 4)
    vadd2_into(target, index - 5, v, 2)
    vadd2_into(target, index + 11, v, 6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vadd_into_adds_runs_of_lanes_widened(dtype):
    """Lanes 0-3 and 4-7 (``vadd4_into``), 2-3 and 6-7 (``vadd2_into``) of a
    vector added into a float64 2-D array at flat offsets (unaligned, across
    a row boundary): exactly the scalar ``+=``."""
    rng = np.random.default_rng(3)
    src = rng.normal(size=16).astype(dtype)
    target = rng.normal(size=(4, 6))
    want = target.copy().ravel()
    for m in range(4):
        want[5 + m] += np.float64(src[m])
        want[12 + m] += np.float64(src[4 + m])
    for m in range(2):
        want[0 + m] += np.float64(src[2 + m])
        want[16 + m] += np.float64(src[6 + m])
    _add_into(target, src, 5)
    assert target.ravel().tobytes() == want.tobytes()


@njit
def _log_of_products(factors, out):
    for i in range(factors.shape[0]):
        m, e = 1.0, 0
        for s in range(factors.shape[1]):
            m, e = split_product(m, e, factors[i, s])
        out[i] = log_of_product(m, e)


def test_log_of_a_product_matches_the_sum_of_logarithms():
    """The incomplete-data pass's log-determinants: products of 16 factors
    from 1e-150 to 1e150 (their product far beyond float64's range) within
    a few rounding errors of the mantissa's 16 products (4e-15) and one of
    the result's of the sum of the factors' logarithms in extended
    precision; a NaN or infinite factor gives NaN."""
    rng = np.random.default_rng(5)
    factors = np.exp(rng.uniform(-1, 1, size=(20000, 16)) * rng.choice([1, 30, 345], (20000, 1)))
    factors[:100] = 1.0
    factors[100:200, 0] = np.sqrt(2.0) * (1 + np.linspace(-1e-15, 1e-15, 100))
    out = np.empty(len(factors))
    _log_of_products(factors, out)
    want = np.log(factors.astype(np.longdouble)).sum(axis=1)
    if np.finfo(np.longdouble).eps > 1e-18:
        pytest.skip("no extended precision for the reference on this platform")
    # the mantissa's rounding, and the result's own (up to 5,500 here)
    assert np.all(np.abs(out - want) < 4e-15 + 2.3e-16 * np.abs(want))
    bad = np.ones((3, 4))
    bad[0, 1], bad[1, 3], bad[2, 0] = np.nan, np.inf, np.nan
    _log_of_products(bad, out[:3])
    assert np.all(np.isnan(out[:3]))


@njit
def _wide_steps(a, b, out):
    """The same statements in vectors of two registers' lanes (``wzero``)
    and of one (``vzero``), on the same arrays."""
    zero = wzero(a)
    n = lanes(zero)
    x = vload_as(a, 3, zero)  # an unaligned offset
    vstore(out, 0, vadd(vmul(x, vload_as(b, 0, zero)), vsplat_as(a[0], zero)))
    vstore(out, n, vsub(zero, vsqrt(vload_as(b, 0, zero))))
    narrow = vzero(a)
    vstore(out, 2 * n, vmul(vload_as(a, 1, narrow), vsplat_as(a[0], narrow)))


@pytest.mark.parametrize("dtype, n", [(np.float64, 8), (np.float32, 16)])
def test_two_register_vectors_are_lane_by_lane_ieee(dtype, n):
    """``wzero`` makes ``vload_as``, ``vsplat_as`` and the operations work on
    2n lanes (LLVM splits each into two instructions): every lane is the
    scalar IEEE result, as with one register's lanes (``vzero``)."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=4 * n).astype(dtype)
    b = rng.uniform(0.5, 2.0, size=4 * n).astype(dtype)
    out = np.full(6 * n, np.nan, dtype=dtype)
    _wide_steps(a, b, out)
    m = 2 * n
    np.testing.assert_array_equal(out[:m], a[3:3 + m] * b[:m] + a[0])
    np.testing.assert_array_equal(out[m:2 * m], -np.sqrt(b[:m]))
    np.testing.assert_array_equal(out[2 * m:2 * m + n], a[1:1 + n] * a[0])
    assert np.isnan(out[2 * m + n:]).all()  # nothing written past the vectors


@njit
def _transpose(src, si, ss, dst, di, ds):
    vtranspose(src, si, ss, dst, di, ds)


@pytest.mark.parametrize("dtype, n", [(np.float64, 8), (np.float32, 16)])
def test_transpose_copies_a_square_block_transposed(dtype, n):
    """``vtranspose`` copies the n x n block at any offset and row strides,
    transposed, and writes nothing else."""
    src = np.arange(40 * 37, dtype=dtype).reshape(40, 37)
    dst = np.full((37, 70), -1.0, dtype=dtype)
    _transpose(src, 3 * 37 + 5, 37, dst, 4 * 70 + 9, 70)
    expected = np.full_like(dst, -1.0)
    expected[4:4 + n, 9:9 + n] = src[3:3 + n, 5:5 + n].T
    np.testing.assert_array_equal(dst, expected)
