"""Every kernel against the NumPy oracle in tests/reference.py."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import COVARIANCE_TYPES, random_params
from fastem import config
from fastem._model import (Params, m_step, precision_cholesky_from_covariances,
                           precisions_from_cholesky, precision_cholesky_from_precisions,
                           covariances_from_cholesky)
from fastem.backends._common import part_bounds
from fastem.backends.cpu import CPUBackend
from reference import covariance_matrices, em_step, log_sum_exp, weighted_log_prob

B = config.BLOCK_ROWS


def _setup(n, d, k, covariance_type, dtype, seed):
    rng = np.random.default_rng(seed)
    weights, means, cov = random_params(k, d, covariance_type, seed)
    X = (rng.normal(scale=3.0, size=(n, d))).astype(dtype)
    params = Params(weights, means, precision_cholesky_from_covariances(cov, covariance_type),
                    covariance_type)
    return X, params, covariance_matrices(cov, covariance_type, k, d)


def _tol(dtype):
    return 1e-9


def _check_against_reference(X, params, cov_mats, covariance_type, weights, compute=np.float64):
    """The pass against the oracle; float32 compute (``compute=None`` on float32
    data) to float32's precision: every tolerance times 1e5 (a row's
    responsibilities carry float32's rounding of log-densities of magnitude ~50
    here; measured up to 2.3e-6 relative)."""
    f = 1.0 if compute == np.float64 else 1e5
    stats = CPUBackend(compute).accumulate(X, params.kernel_inputs(), weights)
    ll, w_ref, m_ref, c_ref, mass_ref = em_step(X, params.weights, params.means, cov_mats,
                                                covariance_type, 1e-6, weights)
    np.testing.assert_allclose(stats.mass, mass_ref, rtol=1e-10 * f, atol=1e-12 * f)
    np.testing.assert_allclose(stats.log_likelihood / stats.weight_sum, ll, rtol=1e-10 * f)
    w, m, c = m_step(stats, covariance_type, 1e-6)
    np.testing.assert_allclose(w, w_ref, rtol=1e-9 * f, atol=1e-12 * f)
    # Compare first moments N_j * mu_j: a component of mass 1e-8 has an
    # ill-conditioned mean (and scikit-learn's +10 eps shifts it by 1e-8).
    np.testing.assert_allclose(m * stats.mass[:, None], m_ref * mass_ref[:, None],
                               rtol=1e-9 * f, atol=1e-9 * f)
    big = stats.mass > 1e-3
    np.testing.assert_allclose(c[big] if covariance_type != "tied" else c,
                               c_ref[big] if covariance_type != "tied" else c_ref,
                               rtol=1e-8 * f, atol=1e-9 * f)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, B - 1, B, 3 * B + 5, 40 * B + 17, 600 * B + 7])
def test_accumulate_matches_reference(covariance_type, dtype, n):
    # 600 B + 7 rows: parts of 3 blocks (MAX_PARTS = 256), so a diag pass
    # sums a pair of blocks per statistics call and then a single one
    d, k = 4, 3
    X, params, cov_mats = _setup(n, d, k, covariance_type, dtype, seed=n)
    sw = np.random.default_rng(1).uniform(0, 2, size=n)
    for weights in (None, sw):
        _check_against_reference(X, params, cov_mats, covariance_type, weights)
        if dtype == np.float32:  # the default: float32 data computes in float32
            _check_against_reference(X, params, cov_mats, covariance_type, weights, None)


@pytest.mark.parametrize("d, k", [(7, 1), (8, 2), (9, 7), (17, 4)])
def test_accumulate_tile_edges(covariance_type, d, k):
    """Shapes at the edges of the kernels' register tiles (pairs of components
    and features, vectors of 8): odd and even k and d, d around 8."""
    n = 3 * B + 5
    X, params, cov_mats = _setup(n, d, k, covariance_type, np.float64, seed=d * k)
    _check_against_reference(X, params, cov_mats, covariance_type,
                             np.random.default_rng(2).uniform(0, 2, size=n))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_prob_matches_reference(covariance_type, dtype):
    n, d, k = 3 * B + 7, 5, 4
    X, params, cov_mats = _setup(n, d, k, covariance_type, dtype, seed=3)
    want = weighted_log_prob(X, params.weights, params.means, cov_mats)
    inputs = params.kernel_inputs()
    for compute, tol in ((np.float64, 1e-10), (None, 1e-6)):
        got = np.concatenate([c for _, _, c in
                              CPUBackend(compute).weighted_log_prob_chunks(X, inputs)])
        np.testing.assert_allclose(got, want, rtol=tol, atol=10 * tol)


def test_log_prob_chunks_cover_all_rows(monkeypatch):
    monkeypatch.setattr(config, "CHUNK_ROWS", 100)
    X, params, cov_mats = _setup(1234, 3, 2, "full", np.float64, seed=4)
    chunks = list(CPUBackend().weighted_log_prob_chunks(X, params.kernel_inputs()))
    assert [c[0] for c in chunks] == list(range(0, 1234, 100))
    got = np.concatenate([c[2] for c in chunks])
    np.testing.assert_allclose(got, weighted_log_prob(X, params.weights, params.means, cov_mats),
                               rtol=1e-10, atol=1e-9)


def test_zero_weight_component_gets_no_responsibility():
    X, params, cov_mats = _setup(200, 3, 3, "diag", np.float64, seed=5)
    params.weights = np.array([0.5, 0.5, 0.0])
    stats = CPUBackend().accumulate(X, params.kernel_inputs())
    assert stats.mass[2] == 0.0
    assert np.isfinite(stats.log_likelihood)
    ll_ref = log_sum_exp(weighted_log_prob(X, params.weights, params.means, cov_mats)).sum()
    np.testing.assert_allclose(stats.log_likelihood, ll_ref, rtol=1e-10)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 300), d=st.integers(1, 6), k=st.integers(1, 5),
       covariance_type=st.sampled_from(COVARIANCE_TYPES),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_accumulate_property(n, d, k, covariance_type, dtype, seed):
    X, params, cov_mats = _setup(n, d, k, covariance_type, dtype, seed)
    stats = CPUBackend().accumulate(X, params.kernel_inputs())  # float32 data: float32 compute
    f = 1.0 if dtype == np.float64 else 1e5
    ll, _, m_ref, c_ref, mass_ref = em_step(X, params.weights, params.means, cov_mats,
                                           covariance_type, 1e-6)
    np.testing.assert_allclose(stats.mass, mass_ref, rtol=1e-9 * f, atol=1e-9 * f)
    np.testing.assert_allclose(stats.log_likelihood / n, ll, rtol=1e-10 * f)
    assert np.isclose(stats.mass.sum(), n, rtol=1e-12 if dtype == np.float64 else 1e-6)


def test_part_bounds_are_fixed_blocks():
    b = part_bounds(10 * B + 3, 10)
    assert b[0] == 0 and b[-1] == 10 * B + 3
    assert np.all(b[:-1] % B == 0) and np.all(np.diff(b) > 0)
    many = part_bounds(10**7, 10)
    assert len(many) - 1 == config.MAX_PARTS
    big_model = part_bounds(10**7, config.PARTIAL_STATS_BYTES // 8 // 4)
    assert len(big_model) - 1 == 4


def test_precision_cholesky_round_trips(covariance_type):
    _, _, cov = random_params(3, 4, covariance_type, seed=7)
    pc = precision_cholesky_from_covariances(cov, covariance_type)
    np.testing.assert_allclose(covariances_from_cholesky(pc, covariance_type), cov, rtol=1e-10)
    prec = precisions_from_cholesky(pc, covariance_type)
    pc2 = precision_cholesky_from_precisions(prec, covariance_type)
    np.testing.assert_allclose(pc2, pc, rtol=1e-9, atol=1e-12)
    if covariance_type in ("full", "tied"):
        assert np.allclose(pc, np.triu(pc))
        mats = covariance_matrices(cov, covariance_type, 3, 4)
        np.testing.assert_allclose(prec.reshape(-1, 4, 4), np.linalg.inv(mats)[: prec.reshape(-1, 4, 4).shape[0]],
                                   rtol=1e-9)


def test_non_positive_definite_covariance_raises():
    cov = np.array([[[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        precision_cholesky_from_covariances(cov, "full")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", [5, 16])
def test_block_stats_full_steps_stop_where_they_say(dtype, d):
    """``block_stats_full(..., steps)``, which benchmarks/kernel_roofline.py
    times step by step: 1 adds only the masses, 2 also the first moments, 3
    (the passes' default) also the lower triangle of the second moments;
    each against the NumPy sums over one block."""
    from fastem.kernels.cpu._jit import from_python
    from fastem.kernels.cpu.gaussian import block_stats_full

    block_stats_full = from_python(block_stats_full)

    k = 3
    rng = np.random.default_rng(d)
    xt = rng.normal(size=(d, B)).astype(dtype)
    means = rng.normal(size=(k, d)).astype(dtype)
    resp = rng.uniform(0, 1, size=(k, B)).astype(dtype)
    resp[1] = 0.0  # a component without mass is skipped
    diff = xt.astype(np.float64)[None] - means.astype(np.float64)[:, :, None]  # (k, d, B)
    r = resp.astype(np.float64)
    mass_ref = r.sum(axis=1)
    first_ref = np.einsum("jb,jab->ja", r, diff)
    second_ref = np.einsum("jb,jab,jcb->jac", r, diff, diff)
    lower = np.tril(np.ones((d, d), dtype=bool))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for steps in (1, 2, 3):
        mass, first, second = np.zeros(k), np.zeros((k, d)), np.zeros((k, d * d))
        block_stats_full(xt, means, resp, np.empty((d, B), dtype), np.empty(B, dtype), mass,
                         first, second, steps)
        np.testing.assert_allclose(mass, mass_ref, rtol=rtol)
        if steps < 2:
            assert not first.any()
        else:
            np.testing.assert_allclose(first, first_ref, rtol=rtol, atol=rtol * B)
        if steps < 3:
            assert not second.any()
        else:
            np.testing.assert_allclose(second.reshape(k, d, d)[:, lower], second_ref[:, lower],
                                       rtol=rtol, atol=rtol * B)


def _models(families, d, first_k):
    """One random model of each covariance type in ``families``, model ``g``
    with ``first_k + g`` components, as a pass's inputs."""
    models = []
    for g, ctype in enumerate(families):
        weights, means, cov = random_params(first_k + g, d, ctype, seed=g)
        models.append(Params(weights, means, precision_cholesky_from_covariances(cov, ctype),
                             ctype).kernel_inputs())
    return models


@pytest.mark.parametrize("families", [("diag", "full", "spherical"), ("diag", "spherical")])
@pytest.mark.parametrize("n", [300 * B + 5, 600 * B + 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shared_pass_matches_separate_passes(families, n, dtype):
    """A pass over diag models sums two blocks per statistics call
    (``gaussian.block_stats_diag``), in a model's own pass and in a shared
    one (mixed families, or diag only) alike: each model gets its own pass's
    statistics, to round-off. Parts hold more than one block only
    past ``MAX_PARTS`` blocks: here 2 blocks per part (pairs, and a last
    part of one partial block) and 3 (a pair and a single)."""
    assert -(-n // B) > config.MAX_PARTS
    d = 5
    rng = np.random.default_rng(n)
    X = rng.normal(scale=3.0, size=(n, d)).astype(dtype)
    sw = rng.uniform(0, 2, size=n)
    models = _models(families, d, 3)
    backend = CPUBackend()
    shared = backend.accumulate_many(X, models, sw)
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    for params, got in zip(models, shared):
        want = backend.accumulate(X, params, sw)
        scale = want.mass.sum()
        np.testing.assert_allclose(got.mass, want.mass, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(got.first, want.first, rtol=rtol, atol=rtol * scale)
        np.testing.assert_allclose(got.second, want.second, rtol=rtol, atol=rtol * scale)
        assert got.log_likelihood == pytest.approx(want.log_likelihood, rel=rtol)


@pytest.mark.parametrize("families,dtype", [
    (("diag", "spherical"), np.float64), (("diag", "spherical"), np.float32),
    (("full", "tied"), np.float64), (("full", "tied"), np.float32),
    (("diag", "full", "spherical"), np.float64)])
def test_shared_pass_over_the_same_parts_gives_each_model_its_own_bits(families, dtype):
    """Small models past ``MAX_PARTS`` blocks: every model of a shared pass has
    the row parts of its own pass (``MAX_PARTS`` of them, diag blocks in
    pairs), and then the same statistics bit for bit: the one-model pass is
    the shared pass with one model, and a diag model reads its factor as
    C-contiguous rows in either (a float32 diag model in a pass that mixes
    layouts is compiled into another driver, so it is not listed)."""
    n, d = 300 * B + 5, 4
    assert -(-n // B) > config.MAX_PARTS
    rng = np.random.default_rng(7)
    X = rng.normal(scale=2.0, size=(n, d)).astype(dtype)
    sw = rng.uniform(0, 2, size=n)
    models = _models(families, d, 2)
    backend = CPUBackend()
    for params, got in zip(models, backend.accumulate_many(X, models, sw)):
        want = backend.accumulate(X, params, sw)
        for name in ("mass", "first", "second"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
