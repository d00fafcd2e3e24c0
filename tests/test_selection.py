"""GaussianMixtureIC: every candidate is the model GaussianMixture fits alone,
all candidates share the passes over X, and the best is chosen by the criterion."""

import warnings

import numpy as np
import pytest

from conftest import make_blobs
from fastem import GaussianMixture, GaussianMixtureIC
from fastem.backends.cpu import CPUBackend

X, _ = make_blobs(n=3000, d=3, k=3, seed=1)
SW = np.random.default_rng(1).uniform(0.3, 2.0, size=len(X))


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


@pytest.mark.parametrize("weighted", [False, True])
def test_each_candidate_is_the_model_fitted_alone(weighted):
    sw = SW if weighted else None
    ic = _quiet(lambda: GaussianMixtureIC(n_components=range(1, 6), covariance_type="all",
                                          random_state=0, n_init=2).fit(X, sample_weight=sw))
    assert len(ic.estimators_) == 20
    for k, ctype, bic, est in zip(ic.results_["n_components"], ic.results_["covariance_type"],
                                  ic.results_["bic"], ic.estimators_):
        alone = _quiet(lambda: GaussianMixture(int(k), covariance_type=ctype, random_state=0,
                                               n_init=2).fit(X, sample_weight=sw))
        assert est.n_iter_ == alone.n_iter_
        assert est.lower_bound_ == pytest.approx(alone.lower_bound_, rel=1e-12)
        # Two starts that reach the same optimum with the components in another
        # order tie to round-off, and the shared pass may break the tie the
        # other way: compare the components in a canonical order.
        a, b = np.lexsort(est.means_.T[::-1]), np.lexsort(alone.means_.T[::-1])
        np.testing.assert_allclose(est.means_[a], alone.means_[b], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(est.weights_[a], alone.weights_[b], rtol=1e-9)
        if ctype in ("full", "diag", "spherical"):
            np.testing.assert_allclose(est.covariances_[a], alone.covariances_[b], rtol=1e-9,
                                       atol=1e-12)
        else:
            np.testing.assert_allclose(est.covariances_, alone.covariances_, rtol=1e-9, atol=1e-12)
        if sw is None:
            assert bic == pytest.approx(alone.bic(X), rel=1e-9)


def test_candidates_share_the_passes(monkeypatch):
    """Each EM iteration reads X once for all candidates still running (plus one
    scoring pass): a candidate makes a pass of its own only when it is the
    last one running, and ``n_passes_`` counts every pass."""
    passes = []
    for name in ("accumulate", "accumulate_many"):
        original = getattr(CPUBackend, name)
        monkeypatch.setattr(CPUBackend, name, lambda self, *a, _f=original, _n=name, **k:
                            passes.append(_n) or _f(self, *a, **k))
    ic = _quiet(lambda: GaussianMixtureIC(n_components=[1, 2, 3, 4, 6], covariance_type=["full", "diag"],
                                          random_state=0).fit(X))
    n_iter = np.sort(ic.results_["n_iter"])
    alone = int(n_iter[-1] - n_iter[-2])  # iterations of the last candidate running
    assert passes.count("accumulate") == alone
    assert len(passes) == ic.n_passes_ == int(n_iter[-1]) + 1
    assert ic.n_passes_ < int(ic.results_["n_iter"].sum())  # what separate fits would read


def test_best_by_criterion_and_delegation():
    pd = pytest.importorskip("pandas")
    ic = _quiet(lambda: GaussianMixtureIC(min_components=1, max_components=6, random_state=0).fit(X))
    table = pd.DataFrame(ic.results_)
    assert list(table.columns) == ["n_components", "covariance_type", "bic", "aic", "lower_bound",
                                   "n_iter", "converged", "seconds"]
    assert ic.n_components_ == 3 and ic.covariance_type_ == "full"  # three blobs
    assert ic.results_["bic"][ic.n_components_ - 1] == table["bic"].min()
    best = ic.best_estimator_
    np.testing.assert_array_equal(ic.predict(X), best.predict(X))
    np.testing.assert_array_equal(ic.predict_proba(X), best.predict_proba(X))
    assert ic.score(X) == best.score(X)
    aic = _quiet(lambda: GaussianMixtureIC(n_components=[1, 2, 3, 4], criterion="aic",
                                           random_state=0).fit(X))
    assert aic.n_components_ == int(aic.results_["n_components"][np.argmin(aic.results_["aic"])])


def test_dask_sweep_equals_the_in_memory_sweep(client):
    da = pytest.importorskip("dask.array")
    kw = dict(n_components=[2, 3, 4], covariance_type=["full", "spherical"], random_state=0)
    ref = _quiet(lambda: GaussianMixtureIC(**kw).fit(X))
    got = _quiet(lambda: GaussianMixtureIC(**kw).fit(da.from_array(X, chunks=(700, 3))))
    np.testing.assert_allclose(got.results_["bic"], ref.results_["bic"], rtol=1e-10)
    assert got.n_passes_ == ref.n_passes_
    for a, b in zip(got.estimators_, ref.estimators_):
        np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_components=[]), "empty"), (dict(n_components=[2, 0]), "n_components"),
    (dict(n_components="3"), "n_components"), (dict(covariance_type="round"), "covariance_type"),
    (dict(covariance_type=[]), "covariance_type is empty"),
    (dict(covariance_type=None), "covariance_type"),
    (dict(criterion="hqic"), "criterion"), (dict(min_components=4, max_components=2), "smaller"),
    (dict(n_components=[5000]), "n_samples >= n_components"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixtureIC(**kwargs).fit(X)


def test_cli_select(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import fastem
    from fastem.cli import main

    np.save(tmp_path / "X.npy", X)
    assert main(["select", str(tmp_path / "X.npy"), "--n-components", "1:5",
                 "--covariance-type", "full,diag", "--plot", str(tmp_path / "bic.png"),
                 "--out", str(tmp_path / "best.npz")]) == 0
    out = capsys.readouterr().out
    ref = _quiet(lambda: GaussianMixtureIC(n_components=range(1, 6), covariance_type=["full", "diag"],
                                           random_state=0).fit(X))
    assert (f"best by bic: n_components={ref.n_components_}, "
            f"covariance_type={ref.covariance_type_!r}") in out
    assert ref.n_components_ == 3
    assert out.count("\n") >= 11 and "<- best" in out  # the table: 10 candidates
    best = fastem.load(tmp_path / "best.npz")
    assert best.n_components == 3 and best.covariance_type == ref.covariance_type_
    assert (tmp_path / "bic.png").stat().st_size > 1000
    assert main(["select", str(tmp_path / "X.npy"), "--n-components", "a:b"]) == 2


def _sequential(monkeypatch_ctx, fn):
    from fastem import _em

    monkeypatch_ctx.setattr(_em, "_batched_starts", lambda *a, **k: None)
    try:
        return _quiet(fn)
    finally:
        monkeypatch_ctx.undo()


@pytest.mark.parametrize("model", ["gaussian", "bayesian"])
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_batched_n_init_is_the_sequential_n_init(model, init_params, monkeypatch):
    """The n_init starts share the passes, and the result is the sequential one:
    same stream, same chosen start, the same numbers to round-off."""
    from fastem import BayesianGaussianMixture

    cls = GaussianMixture if model == "gaussian" else BayesianGaussianMixture
    kw = dict(n_components=4, covariance_type="diag", init_params=init_params, n_init=4,
              random_state=5)
    calls = []
    original = CPUBackend.accumulate_many
    monkeypatch.setattr(CPUBackend, "accumulate_many",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    batched = _quiet(lambda: cls(**kw).fit(X))
    assert calls and len(calls) <= batched.n_iter_ + 40  # shared passes, not 4 x n_iter
    monkeypatch.undo()
    sequential = _sequential(monkeypatch, lambda: cls(**kw).fit(X))
    assert batched.n_iter_ == sequential.n_iter_
    assert batched.lower_bound_ == pytest.approx(sequential.lower_bound_, rel=1e-12)
    np.testing.assert_allclose(batched.means_, sequential.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(batched.covariances_, sequential.covariances_, rtol=1e-10)


def test_batched_n_init_falls_back_when_a_start_reseeds(monkeypatch):
    """Re-seeding draws from the shared stream between starts: then the starts
    run in turn, and the result is exactly the sequential one."""
    from fastem import _em

    # A component starting far from every row loses all its points and is
    # re-seeded in every start, from rows drawn out of the shared stream.
    means = np.r_[X[:3], [[1e6, 1e6, 1e6]]]
    kw = dict(n_components=4, means_init=means, weights_init=np.full(4, 0.25),
              precisions_init=np.repeat(np.eye(3)[None], 4, axis=0), n_init=3, random_state=1,
              max_iter=20)
    Xr = X
    fell_back = []
    original = _em._batched_starts
    monkeypatch.setattr(_em, "_batched_starts",
                        lambda *a, **k: (lambda r: fell_back.append(r is None) or r)(original(*a, **k)))
    got = _quiet(lambda: GaussianMixture(**kw).fit(Xr))
    assert fell_back == [True] and got.n_reseeds_ >= 1
    monkeypatch.undo()
    want = _sequential(monkeypatch, lambda: GaussianMixture(**kw).fit(Xr))
    np.testing.assert_array_equal(got.means_, want.means_)
    assert got.lower_bounds_ == want.lower_bounds_


def _count_assign_passes(monkeypatch):
    """Record the number of k-means assignment requests answered by each pass over X."""
    from fastem import kmeans as km

    passes = []
    original = km.assign_many
    monkeypatch.setattr(km, "assign_many", lambda backend, X, requests, *a, **k:
                        passes.append(len(requests)) or original(backend, X, requests, *a, **k))
    return passes


@pytest.mark.parametrize("weighted", [False, True])
def test_initialisation_passes_are_shared(weighted, monkeypatch):
    """Above the k-means sample, the Lloyd passes over all rows and the final
    assignment of every candidate's initialisation share the passes over X,
    and each candidate is still the model GaussianMixture fits alone."""
    from fastem import config

    monkeypatch.setattr(config, "KMEANS_SAMPLE_ROWS", 400)  # X's 3000 rows: sample + full passes
    sw = SW if weighted else None
    ks, types = [1, 2, 3, 4, 5], ["full", "diag"]
    passes = _count_assign_passes(monkeypatch)
    ic = _quiet(lambda: GaussianMixtureIC(n_components=ks, covariance_type=types, random_state=0,
                                          tol=1e-6).fit(X, sample_weight=sw))
    shared = list(passes)
    passes.clear()
    alone = [_quiet(lambda: GaussianMixture(int(k), covariance_type=str(t), random_state=0,
                                            tol=1e-6).fit(X, sample_weight=sw))
             for k, t in zip(ic.results_["n_components"], ic.results_["covariance_type"])]
    separate = list(passes)
    # The separate fits make one pass per request; the sweep answers the 10
    # candidates' requests together, so it makes as many passes as the
    # longest initialisation needs (the requests of the Lloyd passes on the
    # sample are the sample's own, and stay one per call).
    assert max(shared) == len(ks) * len(types)
    assert sum(shared) == sum(separate)
    assert len(shared) < len(separate) - 3 * len(ks) * len(types)
    for est, ref in zip(ic.estimators_, alone):
        assert est.n_iter_ == ref.n_iter_
        assert est.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-12)
        np.testing.assert_allclose(est.means_, ref.means_, rtol=1e-9, atol=1e-12)
    if sw is None:
        np.testing.assert_allclose(ic.results_["bic"], [ref.bic(X) for ref in alone], rtol=1e-9)


def test_float32_candidates_are_the_models_fitted_alone():
    """float32 data computes in float32; each candidate's rows are centred on
    its own reference in the shared pass, so it is still the model fitted
    alone to float64 round-off (not just to float32's precision)."""
    X32 = (X + 100.0).astype(np.float32)
    kw = dict(covariance_type=["full", "diag", "spherical"], random_state=0)
    ic = _quiet(lambda: GaussianMixtureIC(n_components=[1, 2, 3, 4], **kw).fit(X32))
    for k, ctype, bic, est in zip(ic.results_["n_components"], ic.results_["covariance_type"],
                                  ic.results_["bic"], ic.estimators_):
        alone = _quiet(lambda: GaussianMixture(int(k), covariance_type=str(ctype),
                                               random_state=0).fit(X32))
        assert est.n_iter_ == alone.n_iter_
        assert est.lower_bound_ == pytest.approx(alone.lower_bound_, rel=1e-12)
        np.testing.assert_allclose(est.means_, alone.means_, rtol=1e-9)
        # The sweep scores with the fused pass, ``bic`` with the log-density
        # kernel: two float32 evaluations of one model, 1e-9 apart here. Against
        # the fused pass of the model fitted alone the criterion agrees to round-off.
        own = CPUBackend().accumulate(X32, alone._kernel_inputs()).log_likelihood
        assert bic == pytest.approx(-2 * own + alone._n_parameters() * np.log(len(X32)),
                                    rel=1e-12)
        assert bic == pytest.approx(alone.bic(X32), rel=1e-8)


# -- sample weights are counts (#24 item 2) --------------------------------------

def _two_blobs():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 6]


def test_weights_that_cannot_be_counts_are_warned_about():
    X2 = _two_blobs()
    ic = GaussianMixtureIC(n_components=range(1, 7), random_state=0)
    with pytest.warns(UserWarning, match="sample_weight sums to 1, fewer than the 59 free"):
        ic.fit(X2, sample_weight=np.full(600, 1 / 600))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        ic.fit(X2, sample_weight=np.ones(600))
    assert ic.n_components_ == 2


@pytest.mark.parametrize("weighted", [False, True])
def test_bic_and_aic_of_the_best_model_equal_results(weighted):
    X2 = _two_blobs()
    sw = np.random.default_rng(2).integers(1, 4, size=600).astype(float) if weighted else None
    ic = _quiet(lambda: GaussianMixtureIC(n_components=range(1, 5), random_state=0)
                .fit(X2, sample_weight=sw))
    best = list(ic.results_["n_components"]).index(ic.n_components_)
    assert ic.best_estimator_.bic(X2, sample_weight=sw) == pytest.approx(
        ic.results_["bic"][best], rel=1e-12)
    assert ic.best_estimator_.aic(X2, sample_weight=sw) == pytest.approx(
        ic.results_["aic"][best], rel=1e-12)


@pytest.mark.parametrize("count", [2, 3])
def test_weights_of_c_choose_as_rows_repeated_c_times(count):
    """The stated semantics as an invariance: scaling every weight by an
    integer c is replicating every row c times (same choice, same criteria)."""
    X2 = _two_blobs()[::3]
    # (k <= 2 on two separated blobs: every start reaches the same optimum, so
    # the two fits differ only by their initial draws' round-off)
    kw = dict(n_components=[1, 2], covariance_type="all", random_state=0, tol=1e-10,
              max_iter=500)
    weighted = _quiet(lambda: GaussianMixtureIC(**kw).fit(X2, sample_weight=np.full(len(X2),
                                                                                    count)))
    repeated = _quiet(lambda: GaussianMixtureIC(**kw).fit(np.repeat(X2, count, axis=0)))
    assert (weighted.n_components_, weighted.covariance_type_) == (
        repeated.n_components_, repeated.covariance_type_)
    np.testing.assert_allclose(weighted.results_["bic"], repeated.results_["bic"], rtol=1e-6)
