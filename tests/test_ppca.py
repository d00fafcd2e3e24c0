"""PPCA: the maximum-likelihood solution and its log-likelihood against the
closed form, a direct Gaussian density and scikit-learn's PCA; every backend;
weights; degenerate input."""

import numpy as np
import pytest

import fastem
from fastem import PPCA

stats = pytest.importorskip("scipy.stats")


def _ppca_data(n=20_000, d=10, q=3, seed=0, noise=0.5, offset=5.0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, q)) * np.linspace(3, 1, q)
    return rng.normal(size=(n, q)) @ W.T + noise * rng.normal(size=(n, d)) + offset


X = _ppca_data()


def _closed_form(X, q, w=None):
    """Tipping & Bishop's maximum log-likelihood, from NumPy's covariance."""
    w = np.ones(len(X)) if w is None else w
    N = w.sum()
    mean = w @ X / N
    S = ((X - mean).T * w) @ (X - mean) / N
    lam = np.sort(np.linalg.eigvalsh(S))[::-1]
    d = X.shape[1]
    sigma2 = lam[q:].mean()
    return -0.5 * N * (d * np.log(2 * np.pi) + np.log(lam[:q]).sum() + (d - q) * np.log(sigma2) + d)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_likelihood_is_the_closed_form(dtype):
    Xd = X.astype(dtype)
    p = PPCA(3).fit(Xd)
    want = _closed_form(Xd.astype(np.float64), 3)
    assert p.log_likelihood_ == pytest.approx(want, rel=1e-10)
    assert p.score(Xd) * len(X) == pytest.approx(want, rel=1e-10)
    # and as a plain Gaussian density with the model's covariance
    direct = stats.multivariate_normal(p.mean_, p.get_covariance()).logpdf(Xd.astype(np.float64))
    np.testing.assert_allclose(p.score_samples(Xd), direct, rtol=1e-10)


def test_the_fit_is_the_maximum():
    """Any other noise variance or subspace gives a lower likelihood."""
    p = PPCA(3).fit(X)
    best = p.score(X)
    for scale in (0.9, 1.1):
        other = PPCA(3).fit(X)
        other.noise_variance_ = p.noise_variance_ * scale
        assert other.score(X) < best
    rotated = PPCA(3).fit(X)
    rotated.components_ = np.roll(p.components_, 1, axis=1)
    assert rotated.score(X) < best


def test_agrees_with_sklearn_pca_up_to_its_n_minus_1_convention():
    PCA = pytest.importorskip("sklearn.decomposition").PCA
    p = PPCA(3).fit(X)
    ref = PCA(3).fit(X)
    n = len(X)
    np.testing.assert_allclose(p.mean_, ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(p.components_, ref.components_, atol=1e-9)
    np.testing.assert_allclose(p.explained_variance_ * n / (n - 1), ref.explained_variance_,
                               rtol=1e-10)
    assert p.noise_variance_ * n / (n - 1) == pytest.approx(ref.noise_variance_, rel=1e-10)
    sk_model = stats.multivariate_normal(p.mean_, p.get_covariance() * n / (n - 1))
    assert ref.score(X) == pytest.approx(sk_model.logpdf(X).mean(), rel=1e-10)


def test_latent_means_reconstructions_precision_and_samples():
    p = PPCA(3, random_state=0).fit(X)
    W, s2 = p.loadings_, p.noise_variance_
    M = W.T @ W + s2 * np.eye(3)
    Z = p.transform(X[:50])
    np.testing.assert_allclose(Z, (X[:50] - p.mean_) @ W @ np.linalg.inv(M).T, rtol=1e-10)
    U = p.components_.T
    projection = p.mean_ + (X[:50] - p.mean_) @ U @ U.T
    np.testing.assert_allclose(p.inverse_transform(Z), projection, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(p.get_precision(), np.linalg.inv(p.get_covariance()), rtol=1e-9,
                               atol=1e-12)
    draws = p.sample(200_000)
    C = p.get_covariance()
    # 200,000 draws: a sample covariance entry's standard error is ~0.3 % of max |C|
    np.testing.assert_allclose(draws.mean(axis=0), p.mean_, atol=0.05)
    np.testing.assert_allclose(np.cov(draws.T), C, atol=0.02 * np.abs(C).max())


def test_integer_weights_equal_repeated_rows():
    counts = np.random.default_rng(3).integers(0, 4, size=len(X))
    a = PPCA(3).fit(X, sample_weight=counts)
    b = PPCA(3).fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(a.mean_, b.mean_, rtol=1e-12)
    np.testing.assert_allclose(a.components_, b.components_, atol=1e-10)
    np.testing.assert_allclose(a.explained_variance_, b.explained_variance_, rtol=1e-11)
    assert a.noise_variance_ == pytest.approx(b.noise_variance_, rel=1e-11)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-11)


def test_large_offset_in_float32_does_not_cancel():
    small = _ppca_data(n=5000, offset=1e4, noise=0.05).astype(np.float32)
    p = PPCA(3).fit(small)
    want = _closed_form(small.astype(np.float64), 3)
    assert p.log_likelihood_ == pytest.approx(want, rel=1e-9)


def test_memmap_and_dask_give_the_same_model(tmp_path, client):
    da = pytest.importorskip("dask.array")
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    mm = np.load(tmp_path / "X.npy", mmap_mode="r")
    ref = PPCA(3).fit(np.asarray(mm))
    for got in (PPCA(3).fit(mm), PPCA(3).fit(da.from_array(mm, chunks=(3000, 10)))):
        np.testing.assert_allclose(got.mean_, ref.mean_, rtol=1e-12)
        np.testing.assert_allclose(got.components_, ref.components_, atol=1e-10)
        assert got.noise_variance_ == pytest.approx(ref.noise_variance_, rel=1e-11)
    lazy = PPCA(3).fit(mm).score_samples(da.from_array(mm, chunks=(3000, 10)))
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), ref.score_samples(mm), rtol=1e-12)
    Zd = PPCA(3).fit(mm).transform(da.from_array(mm, chunks=(3000, 10)))
    np.testing.assert_allclose(np.asarray(Zd), ref.transform(mm), rtol=1e-10)


def test_degenerate_input():
    with pytest.raises(ValueError, match="n_components=10 must be smaller than n_features=10"):
        PPCA(10).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        PPCA(0).fit(X)
    flat = np.c_[X[:, :2], X[:, :2] @ np.ones((2, 3))]  # rank 2 in 5 dimensions
    with pytest.raises(ValueError, match="affine subspace of dimension <= 2"):
        PPCA(2).fit(flat)
    constant = np.c_[X[:, :4], np.full(len(X), 7.0)]  # a constant column: a finite answer
    p = PPCA(2).fit(constant)
    assert np.isfinite(p.log_likelihood_) and np.all(np.isfinite(p.components_))
    assert p.score(constant) * len(X) == pytest.approx(_closed_form(constant, 2), rel=1e-9)


def test_save_load_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    p = PPCA(3).fit(df)
    p.save(tmp_path / "p.npz")
    q = fastem.load(tmp_path / "p.npz")
    assert type(q) is PPCA and list(q.feature_names_in_) == list(df.columns)
    np.testing.assert_array_equal(q.score_samples(df), p.score_samples(df))
    with pytest.raises(ValueError, match="same order"):
        q.score_samples(df[df.columns[::-1]])


def test_a_small_variance_beside_a_huge_one_is_not_degenerate():
    """The cut-off is the float64 resolution of the eigenvalues (d eps lambda_max),
    not a fixed 1e-12 of the largest: a variance of 1 beside 4e12 is real."""
    rng = np.random.default_rng(0)
    X2 = np.c_[rng.normal(size=2000), 2e6 * rng.normal(size=2000)]
    model = PPCA(1).fit(X2)
    smallest = np.linalg.eigvalsh(np.cov(X2.T, bias=True))[0]
    assert model.noise_variance_ == pytest.approx(smallest, rel=1e-2)  # known to eps * 4e12
    flat = rng.normal(size=(100, 1)) @ np.array([[1.0, 2.0, -1.0]]) + 3.0
    with pytest.raises(ValueError, match="affine subspace"):
        PPCA(1).fit(flat)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(20, 200), d=st.integers(2, 5), log10_scale=st.floats(-30, 30),
       seed=st.integers(0, 2**16))
def test_rescaled_weights_and_reordered_rows_fit_the_same_model(n, d, log10_scale, seed):
    rng = np.random.default_rng(seed)
    Xs = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(size=d) * 5
    w = rng.uniform(0.1, 3.0, size=n)
    order = rng.permutation(n)
    q = d - 1
    base = PPCA(q).fit(Xs, sample_weight=w)
    for other in (PPCA(q).fit(Xs, sample_weight=w * 10.0 ** log10_scale),
                  PPCA(q).fit(Xs[order], sample_weight=w[order])):
        np.testing.assert_allclose(other.mean_, base.mean_, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(other.explained_variance_, base.explained_variance_,
                                   rtol=1e-8)
        assert other.noise_variance_ == pytest.approx(base.noise_variance_, rel=1e-8)
        np.testing.assert_allclose(np.abs(other.components_ @ base.components_.T),
                                   np.eye(q), atol=1e-6)
    scaled = PPCA(q).fit(Xs, sample_weight=w * 10.0 ** log10_scale)
    assert scaled.log_likelihood_ == pytest.approx(base.log_likelihood_ * 10.0 ** log10_scale,
                                                   rel=1e-8)


def test_data_whose_covariance_overflows_float64_is_an_error():
    """At 1e160 a row's squared distance from the first overflows: its
    density was 0, so the moments silently left it out (the error then
    blamed an affine subspace)."""
    X = np.random.default_rng(0).normal(size=(300, 3))
    assert np.isfinite(PPCA(1).fit(X * 1e150).noise_variance_)
    for scale in (1e154, 1e160, 1e300):
        with pytest.raises(ValueError, match="overflows float64"):
            PPCA(1).fit(X * scale)
