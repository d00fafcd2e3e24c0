"""partial_fit: stepwise EM and stochastic VI (#27 sections 1 and 3).

The exact checks: one step with rho = 1 on all of X is one batch iteration;
the running statistics are the closed-form weighted sum of the batches'
statistics; integer weights are repeated rows; and the stream's memory does
not grow with its length.
"""

import contextlib
import copy
import gc
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import COVARIANCE_TYPES, make_blobs, random_params
from fastem import BayesianGaussianMixture, GaussianMixture
from fastem._model import precision_cholesky_from_covariances
from fastem.backends import get_backend
from fastem.mixture._stream import step_size

X, _ = make_blobs(n=900, d=3, k=3, seed=0)


@contextlib.contextmanager
def _quiet():
    """No ConvergenceWarning from the deliberately short batch fits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _same_params(a, b, rtol):
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(a.means_, b.means_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
def test_one_step_on_all_of_x_is_one_batch_iteration(cls, covariance_type):
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0)
    with _quiet():
        batch = cls(max_iter=1, **kw).fit(X)
    stream = cls(**kw).partial_fit(X)
    _same_params(stream, batch, 1e-10)
    assert stream.n_batches_seen_ == stream.n_iter_ == 1
    if cls is BayesianGaussianMixture:
        np.testing.assert_allclose(stream.lower_bound_, batch.lower_bound_, rtol=1e-10)
        np.testing.assert_allclose(stream.elbo_, batch.elbo_, rtol=1e-10)
        np.testing.assert_allclose(stream.degrees_of_freedom_, batch.degrees_of_freedom_,
                                   rtol=1e-10)
    else:  # the running mean log-likelihood is the pass's
        np.testing.assert_allclose(stream.lower_bound_, batch.lower_bound_, rtol=1e-12)


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
def test_running_statistics_are_the_closed_form_weighted_sum(cls, covariance_type):
    """s_T = sum_t rho_t prod_(u>t) (1 - rho_u) s_hat_t, each batch's statistics
    per unit of weight under the parameters before its step."""
    rng = np.random.default_rng(1)
    batches = np.array_split(X[rng.permutation(len(X))], 5)
    weights = [rng.uniform(0.2, 2.0, size=len(b)) for b in batches]
    model = cls(n_components=3, covariance_type=covariance_type, random_state=0,
                learning_decay=0.6, learning_offset=1.5)
    before = []
    for b, w in zip(batches, weights):
        before.append(copy.deepcopy(model) if hasattr(model, "means_") else None)
        model.partial_fit(b, sample_weight=w)
    cpu = get_backend("cpu")
    # the first batch's statistics come from the initial parameters, which the
    # first step's snapshot does not hold: take them from a fresh first step
    first = cls(**model.get_params())
    family = None
    unit = []
    for t, (b, w, snap) in enumerate(zip(batches, weights, before), start=1):
        if snap is None:
            first.partial_fit(b, sample_weight=w)
            family = first._stream.family
            s_hat = first._stream.running
        else:
            data = cpu.prepare(cpu.check_input(b))
            s_hat = cpu.accumulate(data, family.kernel_inputs(snap._fitted_params()), w)
            s_hat = s_hat.scaled(1.0 / s_hat.weight_sum)
        unit.append(s_hat)
    rhos = [step_size(t, 0.6, 1.5) for t in range(1, len(batches) + 1)]
    centres = model._stream.running.centres
    expected = None
    for t, s in enumerate(unit):
        coefficient = rhos[t] * np.prod([1.0 - r for r in rhos[t + 1:]])
        term = s.recentred(centres).scaled(coefficient)
        expected = term if expected is None else expected + term
    got = model._stream.running
    np.testing.assert_allclose(got.mass, expected.mass, rtol=1e-10)
    np.testing.assert_allclose(got.first, expected.first, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.second, expected.second, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model._stream.weight_seen, sum(w.sum() for w in weights))


def _given_start(k, d, covariance_type, seed=0):
    weights, means, cov = random_params(k, d, covariance_type, seed)
    precisions = precision_cholesky_from_covariances(cov, covariance_type)
    if covariance_type == "full":
        prec = np.einsum("kij,klj->kil", precisions, precisions)
    elif covariance_type == "tied":
        prec = precisions @ precisions.T
    else:
        prec = precisions ** 2
    return dict(weights_init=weights, means_init=means + X.mean(axis=0), precisions_init=prec)


@settings(max_examples=20, deadline=None)
@given(covariance_type=st.sampled_from(COVARIANCE_TYPES), seed=st.integers(0, 2**16),
       scale=st.sampled_from([1.0, 1e-6, 1e6]))
def test_integer_weights_are_repeated_rows_and_their_scale_does_not_matter(covariance_type, seed,
                                                                           scale):
    rng = np.random.default_rng(seed)
    kw = dict(n_components=3, covariance_type=covariance_type, random_state=0,
              **_given_start(3, 3, covariance_type, seed))
    weighted, repeated, rescaled = (GaussianMixture(**kw) for _ in range(3))
    for b in np.array_split(X[rng.permutation(len(X))], 3):
        w = rng.integers(1, 4, size=len(b))
        weighted.partial_fit(b, sample_weight=w)
        rescaled.partial_fit(b, sample_weight=w * scale)
        repeated.partial_fit(np.repeat(b, w, axis=0))
    # summed in another order, a random start's ill-conditioned covariances
    # amplify round-off to ~1e-8 (seen for 'tied', seed 3041)
    _same_params(rescaled, weighted, 1e-7)
    # a component that empties is re-seeded at rows drawn by weight, which
    # are not the rows a uniform draw from the repeated rows picks; and the
    # M-step's guard on every mass, 10 eps times the mean weight, differs
    # between the two (mean weights 2 and 1): a component that all but empties
    # (a weight of 7e-12, seen for 'spherical', seed 17722) moves by 3e-7
    nearly_empty = min(weighted.weights_.min(), repeated.weights_.min()) < 1e-6
    if weighted.n_reseeds_ == 0 and repeated.n_reseeds_ == 0 and not nearly_empty:
        _same_params(weighted, repeated, 1e-7)


def test_a_long_stream_runs_in_constant_memory():
    """Thousands of batches: nothing is kept per batch. Counted are the
    allocations made under partial_fit (other threads of the test process,
    such as a Dask cluster's, allocate too); after a thousand batches NumPy's
    and Python's small-object caches have settled, and a list entry per batch
    would add over 48 KiB here."""
    rng = np.random.default_rng(0)
    gm = GaussianMixture(2, covariance_type="diag", random_state=0)
    rows = rng.normal(size=(64, 2))
    import os

    import fastem

    # the package's own files (not "*fastem*": CI's venv lives in /tmp/fastem-ci.*)
    mine = [tracemalloc.Filter(True, os.path.join(os.path.dirname(fastem.__file__), "*"),
                               all_frames=True)]

    def held():
        gc.collect()
        return tracemalloc.take_snapshot().filter_traces(mine)

    tracemalloc.start(2)  # a NumPy function and its fastem caller
    try:
        for i in range(3000):
            gm.partial_fit(rows + rng.normal(size=(64, 2)))
            if i == 999:
                before = held()
        after = held()
    finally:
        tracemalloc.stop()
    assert gm.n_batches_seen_ == 3000
    diff = after.compare_to(before, "traceback")
    growth = sum(d.size_diff for d in diff)
    assert growth < 24 * 1024, "\n".join(str(d) for d in diff[:5])


def test_the_stream_approaches_the_batch_optimum():
    """On data from a known mixture, more passes of stepwise EM bring the
    held-out log-likelihood to the batch fit's."""
    Xall, _ = make_blobs(n=60_000, d=4, k=4, seed=3)
    train, test = Xall[:50_000], Xall[50_000:]
    with _quiet():
        batch = GaussianMixture(4, random_state=0, tol=1e-8, max_iter=500).fit(train)
    stream = GaussianMixture(4, random_state=0)
    gaps, distances = [], []
    order = np.argsort(batch.means_[:, 0])
    for _ in range(4):
        for b in np.array_split(train, 25):
            stream.partial_fit(b)
        gaps.append(abs(stream.score(test) - batch.score(test)))
        mine = np.argsort(stream.means_[:, 0])
        distances.append(np.abs(stream.means_[mine] - batch.means_[order]).max())
    assert gaps[-1] < 0.005, gaps
    assert all(b < a for a, b in zip(distances, distances[1:])), distances  # the parameters too


def test_same_stream_same_bits_and_backends_agree():
    batches = np.array_split(X, 4)
    a, b = GaussianMixture(3, random_state=0), GaussianMixture(3, random_state=0)
    for x in batches:
        a.partial_fit(x)
        b.partial_fit(x)
    np.testing.assert_array_equal(a.means_, b.means_)
    da = pytest.importorskip("dask.array")
    c = GaussianMixture(3, random_state=0)
    for x in batches:
        c.partial_fit(da.from_array(x, chunks=(60, 3)))
    _same_params(c, a, 1e-10)


def test_partial_fit_after_fit_continues_and_fit_after_partial_fit_restarts():
    with _quiet():
        fitted = GaussianMixture(3, random_state=0).fit(X)
    means = fitted.means_.copy()
    fitted.partial_fit(X[:300])
    assert fitted.n_batches_seen_ == 1
    assert np.abs(fitted.means_ - means).max() < 0.5  # moved a step, not restarted
    again = GaussianMixture(3, random_state=0).partial_fit(X[:300]).partial_fit(X[300:600])
    with _quiet():
        again.fit(X)
        reference = GaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_array_equal(again.means_, reference.means_)
    assert not hasattr(again, "_stream")


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
def test_partial_fit_refuses_what_it_cannot_use(cls):
    model = cls(n_components=3, random_state=0).partial_fit(X[:100])
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:50, :2])
    with pytest.raises(ValueError, match="sums to zero"):
        model.partial_fit(X[:50], sample_weight=np.zeros(50))
    with pytest.raises(ValueError, match="infinity"):
        model.partial_fit(np.where(X[:50] > 1, np.inf, X[:50]))
    model.set_params(covariance_type="diag")
    with pytest.raises(ValueError, match="partial_fit: n_components or covariance_type changed"):
        model.partial_fit(X[:50])
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        cls(n_components=5).partial_fit(X[:4])
    for decay in (0.5, 1.2, "0.7", True):
        with pytest.raises(ValueError, match="learning_decay"):
            cls(n_components=2, learning_decay=decay).partial_fit(X)
    with pytest.raises(ValueError, match="learning_offset"):
        cls(n_components=2, learning_offset=-1.0).partial_fit(X)


def test_a_saved_stream_model_loads_and_continues(tmp_path):
    from fastem import load

    gm = GaussianMixture(3, random_state=0).partial_fit(X[:300]).partial_fit(X[300:600])
    gm.save(tmp_path / "m.npz")
    again = load(tmp_path / "m.npz")
    assert again.learning_decay == gm.learning_decay
    np.testing.assert_array_equal(again.predict(X), gm.predict(X))
    again.partial_fit(X[600:])
    assert again.n_batches_seen_ == 1


# -- fit with batch_size: passes of stepwise EM over data that is all there (#27 section 2)

def test_batch_size_fit_is_deterministic_and_the_same_on_every_backend(tmp_path):
    kw = dict(n_components=3, batch_size=128, max_iter=3, random_state=0)
    da = pytest.importorskip("dask.array")
    np.save(tmp_path / "X.npy", X)
    with _quiet():
        a = GaussianMixture(**kw).fit(X)
        b = GaussianMixture(**kw).fit(X)
        mapped = GaussianMixture(**kw).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))
        chunked = GaussianMixture(**kw).fit(da.from_array(X, chunks=(100, 3)))
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.n_iter_ == len(a.lower_bounds_) <= 3
    _same_params(mapped, a, 1e-10)
    _same_params(chunked, a, 1e-10)


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
def test_a_few_passes_in_batches_reach_the_batch_fit(cls):
    Xall, _ = make_blobs(n=40_000, d=4, k=4, seed=5)
    train, test = Xall[:30_000], Xall[30_000:]
    with _quiet():
        batch = cls(n_components=4, random_state=0, max_iter=500, tol=1e-8).fit(train)
        streamed = cls(n_components=4, random_state=0, batch_size=2_000, max_iter=3).fit(train)
    assert abs(streamed.score(test) - batch.score(test)) < 0.01


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
@pytest.mark.parametrize("batch_size", [1, 10, 50, 200])
def test_rows_sorted_by_cluster_fit_in_batches_as_shuffled_ones_do(cls, batch_size):
    """Rows sorted by cluster: every block but one is from one cluster. The
    first block used to set the first step alone, so the start drawn from all
    of X was forgotten and a component lost its mass (weights 0.003 / 0.997,
    a score 0.58 nats per row below batch EM's); a start on batch_size rows
    (10) left small batches in a one-component optimum even when shuffled."""
    rng = np.random.default_rng(0)
    X2 = np.r_[rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 4]
    with _quiet():
        batch = cls(n_components=2, random_state=0).fit(X2)
        for rows in (X2, X2[rng.permutation(len(X2))]):
            # 5 passes: stochastic VI's noisy bound does not meet tol, and 100
            # passes of 600 one-row steps took 150 s
            streamed = cls(n_components=2, random_state=0, batch_size=batch_size,
                           max_iter=5).fit(rows)
            assert abs(streamed.score(X2) - batch.score(X2)) < 0.01
            assert streamed.weights_.min() > 0.45


def test_batch_size_progress_counts_rows_and_weights_count_rows():
    seen = []
    gm = GaussianMixture(3, batch_size=200, max_iter=2, tol=0, random_state=0)
    gm.progress_callback = lambda n, total, *rest: seen.append((n, total))
    with _quiet():
        gm.fit(X)
    assert seen[-1] == (2 * len(X), 2 * len(X)) and len(seen) == 2 * 5
    with pytest.raises(ValueError, match="batch_size"):
        GaussianMixture(3, batch_size=0).fit(X)


def test_cli_fit_in_batches_counts_rows(tmp_path, capsys):
    from fastem import load
    from fastem.cli import main

    np.save(tmp_path / "X.npy", X)
    assert main(["fit", str(tmp_path / "X.npy"), "--n-components", "3", "--batch-size", "300",
                 "--max-iter", "2", "--random-state", "0", "--out", str(tmp_path / "m.npz")]) == 0
    err = capsys.readouterr().err
    assert "1800/1800" in err and "row" in err  # two passes of 900 rows
    assert load(tmp_path / "m.npz").batch_size == 300


def test_batch_size_warm_start_continues_from_the_fitted_model():
    with _quiet():
        gm = GaussianMixture(3, batch_size=300, max_iter=1, tol=0, random_state=0,
                             warm_start=True).fit(X)
        first = gm.means_.copy()
        gm.fit(X)
    # a restart would give ``first`` again (same random_state); a continuation moves on
    assert gm.n_iter_ == 1 and 0 < np.abs(gm.means_ - first).max() < 0.5


@pytest.mark.parametrize("cls", [GaussianMixture, BayesianGaussianMixture])
def test_blocks_of_weightless_rows_are_skipped_in_batches(cls):
    """fit with batch_size divided by a block's weight: rows of weight 0
    filling a block crashed with ZeroDivisionError. Such blocks carry
    nothing and are skipped; the fit is that of the weighted rows (to the
    stepwise noise), and a sample with no weighted row starts the stream
    from the first weighted block."""
    X, _ = make_blobs(n=1200, d=3, k=2, seed=21)
    w = np.r_[np.zeros(600), np.ones(600)]
    kw = dict(n_components=2, random_state=0, batch_size=100, max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = cls(**kw).fit(X, sample_weight=w)
        want = cls(**kw).fit(X[600:])
    order = np.argsort(got.means_[:, 0]), np.argsort(want.means_[:, 0])
    np.testing.assert_allclose(got.means_[order[0]], want.means_[order[1]], atol=0.1)
    few = np.zeros(1200)
    few[-5:] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = cls(**dict(kw, n_components=1)).fit(X, sample_weight=few)
    np.testing.assert_allclose(one.means_[0], X[-5:].mean(axis=0), atol=1e-6)


def test_a_later_batch_may_miss_a_whole_column():
    """The first batch must observe every column (it initialises the model);
    a later one that misses a column (a sensor down) updates the model from
    the others, as a prediction on such rows is made."""
    X, _ = make_blobs(n=400, d=3, k=2, seed=22)
    gm = GaussianMixture(2, random_state=0)
    first = X[:200].copy()
    first[:, 1] = np.nan
    with pytest.raises(ValueError, match="no observed value in column"):
        GaussianMixture(2, random_state=0).partial_fit(first)
    gm.partial_fit(X[:200])
    later = X[200:].copy()
    later[:, 1] = np.nan
    gm.partial_fit(later)
    assert all(np.all(np.isfinite(a)) for a in (gm.weights_, gm.means_, gm.covariances_))
