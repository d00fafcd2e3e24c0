"""Every holder of X fits the same model: a NumPy array, a memory map and a Dask
array on a distributed LocalCluster, for every ``init_params``, at a size above
the k-means sampling threshold (``config.KMEANS_SAMPLE_ROWS``) and above the 100,000
rows that Dask and GPU input used to initialise from. GPU arrays get the same
test under the CUDA simulator (tests/cuda)."""

import warnings

import numpy as np
import pytest

from conftest import make_blobs
from fastem import GaussianMixture
from fastem import config

da = pytest.importorskip("dask.array")

N_ROWS = 120_000
X, _ = make_blobs(n=N_ROWS, d=3, k=4, seed=31, spread=3.0)
SW = np.random.default_rng(5).uniform(0.2, 2.0, size=N_ROWS)


def _fit(data, sample_weight=None, **kw):
    params = dict(n_components=4, random_state=7, max_iter=5, tol=0, covariance_type="full")
    params.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(**params).fit(data, sample_weight=sample_weight)


def _assert_same_model(got, want):
    np.testing.assert_allclose(got.weights_, want.weights_, rtol=1e-10, atol=0)
    np.testing.assert_allclose(got.means_, want.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.covariances_, want.covariances_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.lower_bounds_, want.lower_bounds_, rtol=1e-10, atol=0)


def test_the_test_size_is_above_the_sampling_threshold():
    assert N_ROWS > max(config.KMEANS_SAMPLE_ROWS, 50 * 4, 100_000)


@pytest.fixture(scope="module")
def memmap(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "X.npy"
    np.save(path, X)
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("weighted", [False, True])
def test_numpy_memmap_and_dask_fit_the_same_model(client, memmap, init_params, weighted):
    sw = SW if weighted else None
    ref = _fit(X, sw, init_params=init_params)
    _assert_same_model(_fit(memmap, sw, init_params=init_params), ref)
    _assert_same_model(_fit(da.from_array(X, chunks=(16_000, 3)), sw, init_params=init_params), ref)


@pytest.mark.parametrize("covariance_type", ["tied", "diag", "spherical"])
def test_dask_default_init_every_covariance_type(client, covariance_type):
    ref = _fit(X, covariance_type=covariance_type)
    _assert_same_model(_fit(da.from_array(X, chunks=(28_000, 3)),
                            covariance_type=covariance_type), ref)


def test_dask_with_means_init(client):
    """The reported case: with ``means_init`` the Dask model was 6e-2 off."""
    means = X[[0, 100, 200, 300]]
    ref = _fit(X, means_init=means)
    _assert_same_model(_fit(da.from_array(X, chunks=(20_000, 3)), means_init=means), ref)


def test_reseeding_draws_the_same_rows(client):
    """An emptied component is moved to the same row whatever holds X."""
    start = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1e6, 1e6, 1e6], [2.0, 2.0, 2.0]])
    kw = dict(means_init=start, weights_init=np.full(4, 0.25), max_iter=3)
    ref = _fit(X, **kw)
    assert ref.n_reseeds_ >= 1
    got = _fit(da.from_array(X, chunks=(24_000, 3)), **kw)
    assert got.n_reseeds_ == ref.n_reseeds_
    _assert_same_model(got, ref)


@pytest.mark.parametrize("covariance_type, init_params", [("full", "kmeans"), ("diag", "random"),
                                                          ("spherical", "k-means++")])
def test_bayesian_mixture_on_every_backend(client, memmap, covariance_type, init_params):
    """The variational family runs the same passes: memmap and Dask give the
    in-memory posterior, priors from the data included."""
    from fastem import BayesianGaussianMixture

    kw = dict(n_components=6, covariance_type=covariance_type, init_params=init_params,
              random_state=3, max_iter=5, tol=0)

    def fit(data, sw=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return BayesianGaussianMixture(**kw).fit(data, sample_weight=sw)

    for sw in (None, SW):
        ref = fit(X, sw)
        for got in (fit(memmap, sw), fit(da.from_array(X, chunks=(16_000, 3)), sw)):
            _assert_same_model(got, ref)
            np.testing.assert_allclose(got.mean_prior_, ref.mean_prior_, rtol=1e-12)
            np.testing.assert_allclose(got.covariance_prior_, ref.covariance_prior_, rtol=1e-10)
            np.testing.assert_allclose(got.degrees_of_freedom_, ref.degrees_of_freedom_, rtol=1e-10)
