"""GaussianHMM against hmmlearn, given the same initial parameters (#28).

hmmlearn's own tests fit from parameters set by hand with ``init_params=""``;
so do these, for every covariance type and both implementations, and compare
parameters, the log-likelihood history and the number of iterations to 1e-8
relative, Viterbi paths exactly.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import COVARIANCE_TYPES, same_bits_compiled_afresh_or_cached
from fastem import GaussianHMM
from fastem.backends import CPUBackend

hmm = pytest.importorskip("hmmlearn.hmm")

K, D = 3, 2


def _sequences(seed=0, n_seq=6, length=80):
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [4.0, 1.0], [-2.0, 4.0]])
    trans = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.1, 0.1, 0.8]])
    X, lengths = [], []
    for _ in range(n_seq):
        n = int(rng.integers(length // 2, length))
        s = int(rng.integers(0, K))
        for _ in range(n):
            X.append(means[s] + rng.normal(size=D))
            s = int(rng.choice(K, p=trans[s]))
        lengths.append(n)
    return np.array(X), np.array(lengths)


def _start(covariance_type, seed=1):
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(K))
    trans = rng.dirichlet(np.ones(K) * 3, size=K)
    means = rng.normal(scale=2.0, size=(K, D))
    A = rng.normal(size=(K, D, D)) * 0.3
    full = A @ A.transpose(0, 2, 1) + np.eye(D)
    covars = {"full": full, "tied": full[0], "diag": rng.uniform(0.5, 2.0, size=(K, D)),
              "spherical": rng.uniform(0.5, 2.0, size=K)}[covariance_type]
    return start, trans, means, covars


def _value(model, name):
    """``name`` of a fitted model; for 'spherical' covariances the variance per
    state (hmmlearn 0.3.3's ``covars_`` of a fitted spherical model has
    n_components * n_features matrices: it tiles the variances internally)."""
    if name == "covars_" and model.covariance_type == "spherical":
        return np.ravel(model._covars_).reshape(K, -1)[:, 0]
    return getattr(model, name)


def _pair(covariance_type, implementation="log", **kw):
    start, trans, means, covars = _start(covariance_type)
    models = []
    for cls in (GaussianHMM, hmm.GaussianHMM):
        m = cls(n_components=K, covariance_type=covariance_type, init_params="",
                implementation=implementation, **kw)
        m.startprob_, m.transmat_, m.means_, m.covars_ = start, trans, means, covars
        models.append(m)
    return models


@pytest.mark.parametrize("implementation", ["log", "scaling"])
def test_fit_agrees_with_hmmlearn(covariance_type, implementation):
    X, lengths = _sequences()
    ours, ref = _pair(covariance_type, implementation, n_iter=25, tol=1e-6)
    ours.fit(X, lengths)
    ref.fit(X, lengths)
    assert ours.monitor_.iter == ref.monitor_.iter
    assert ours.monitor_.converged == ref.monitor_.converged
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-8)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_allclose(_value(ours, name), _value(ref, name), rtol=1e-8,
                                   atol=1e-10, err_msg=name)


def test_priors_agree_with_hmmlearn(covariance_type):
    X, lengths = _sequences(seed=2)
    kw = dict(n_iter=5, startprob_prior=2.0, transmat_prior=1.5, means_prior=0.5,
              means_weight=2.0, covars_prior=0.1, covars_weight=4.0)
    ours, ref = _pair(covariance_type, **kw)
    ours.fit(X, lengths)
    ref.fit(X, lengths)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_allclose(_value(ours, name), _value(ref, name), rtol=1e-8,
                                   atol=1e-10, err_msg=name)


def test_scores_decoding_and_criteria_agree_with_hmmlearn(covariance_type):
    X, lengths = _sequences(seed=3)
    ours, ref = _pair(covariance_type, n_iter=3)
    ours.fit(X, lengths)
    ref.fit(X, lengths)
    np.testing.assert_allclose(ours.score(X, lengths), ref.score(X, lengths), rtol=1e-10)
    a, pa = ours.score_samples(X, lengths)
    b, pb = ref.score_samples(X, lengths)
    np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(pa, pb, atol=1e-10)
    for algorithm in ("viterbi", "map"):
        la, sa = ours.decode(X, lengths, algorithm=algorithm)
        lb, sb = ref.decode(X, lengths, algorithm=algorithm)
        np.testing.assert_array_equal(sa, sb)
        np.testing.assert_allclose(la, lb, rtol=1e-10)
    np.testing.assert_array_equal(ours.predict(X, lengths), ref.predict(X, lengths))
    np.testing.assert_allclose(ours.aic(X, lengths), ref.aic(X, lengths), rtol=1e-10)
    np.testing.assert_allclose(ours.bic(X, lengths), ref.bic(X, lengths), rtol=1e-10)
    if covariance_type != "spherical":  # hmmlearn 0.3.3 indexes its tiled spherical covars_
        np.testing.assert_array_equal(ours.sample(30, random_state=4)[1],
                                      ref.sample(30, random_state=4)[1])
        np.testing.assert_allclose(ours.sample(30, random_state=4)[0],
                                   ref.sample(30, random_state=4)[0], rtol=1e-9)


@settings(max_examples=15, deadline=None)
@given(covariance_type=st.sampled_from(COVARIANCE_TYPES), seed=st.integers(0, 2**16))
def test_integer_sequence_weights_are_repeated_sequences(covariance_type, seed):
    X, lengths = _sequences(seed=seed % 50, n_seq=4)
    w = np.random.default_rng(seed).integers(1, 4, size=len(lengths))
    bounds = np.r_[0, np.cumsum(lengths)]
    reps = [X[bounds[i]:bounds[i + 1]] for i in range(len(lengths)) for _ in range(w[i])]
    weighted, _ = _pair(covariance_type, n_iter=4)
    repeated, _ = _pair(covariance_type, n_iter=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a state may collapse (said, tested below)
        weighted.fit(X, lengths, sample_weight=w)
        repeated.fit(np.concatenate(reps), np.repeat(lengths, w))
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        # summed in another order; a state near collapse amplifies round-off
        # to ~4e-7 relative (hypothesis: 'full', seed 57)
        np.testing.assert_allclose(_value(weighted, name), _value(repeated, name), rtol=1e-6,
                                   atol=1e-8, err_msg=name)


def test_same_bits_for_any_thread_count():
    import numba

    X, lengths = _sequences(seed=5, n_seq=40, length=40)
    fits = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            m, _ = _pair("full", n_iter=5)
            fits.append(m.fit(X, lengths))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert fits[0].means_.tobytes() == fits[1].means_.tobytes()
    assert fits[0].transmat_.tobytes() == fits[1].transmat_.tobytes()


def test_a_memory_map_fits_the_same_bits_as_the_array(tmp_path):
    """X on disk (np.memmap) runs the same passes as X in memory: the same
    bits from the default initialisation, scores and paths."""
    X, lengths = _sequences(seed=8, n_seq=5, length=60)
    mm = np.memmap(tmp_path / "x.f64", dtype=np.float64, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    mm = np.memmap(tmp_path / "x.f64", dtype=np.float64, mode="r", shape=X.shape)
    a, b = (GaussianHMM(3, covariance_type="full", random_state=0, n_iter=4).fit(data, lengths)
            for data in (X, mm))
    assert a.means_.tobytes() == b.means_.tobytes()
    assert a.covars_.tobytes() == b.covars_.tobytes()
    assert a.score(X, lengths) == b.score(mm, lengths)
    np.testing.assert_array_equal(a.predict(X, lengths), b.predict(mm, lengths))


def test_default_initialisation_fits_a_clear_model():
    """k-means means and hmmlearn's Dirichlet(1/k) start and transitions. (That
    peaked draw traps both libraries in the same local optimum for
    random_state 0 and 1 on this data; 2 and 3 find the three states.)"""
    X, lengths = _sequences(seed=6, n_seq=10, length=200)
    m = GaussianHMM(n_components=3, covariance_type="full", random_state=2, n_iter=50).fit(
        X, lengths)
    found = np.sort(m.means_[:, 0])
    np.testing.assert_allclose(found, [-2.0, 0.0, 4.0], atol=0.3)
    assert m.monitor_.converged


def test_bad_input_is_a_clear_error():
    X, lengths = _sequences(seed=7)
    m = GaussianHMM(n_components=2, random_state=0)
    with pytest.raises(ValueError, match="lengths sum to"):
        m.fit(X, lengths[:-1])
    with pytest.raises(ValueError, match="positive"):
        m.fit(X, np.r_[lengths[:-1], 0, lengths[-1]])
    with pytest.raises(ValueError, match="positive"):
        m.fit(X, np.r_[-5, lengths[0] + 5, lengths[1:]])
    with pytest.raises(ValueError, match="does not fit missing values"):
        m.fit(np.where(X > 3, np.nan, X), lengths)
    with pytest.raises(ValueError, match="does not fit missing values"):
        GaussianHMM(2, random_state=0).fit(X, lengths).score(np.where(X > 3, np.inf, X), lengths)
    m = GaussianHMM(n_components=2, init_params="", covariance_type="diag")
    m.startprob_, m.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.2], [0.5, 0.5]])
    m.means_, m.covars_ = np.zeros((2, 2)), np.ones((2, 2))
    with pytest.raises(ValueError, match="transmat_ rows"):
        m.fit(X, lengths)
    for bad in (dict(covariance_type="x"), dict(algorithm="x"), dict(implementation="x"),
                dict(params="stmz"), dict(n_iter=0), dict(backend="gpu")):
        with pytest.raises(ValueError):
            GaussianHMM(n_components=2, **bad).fit(X, lengths)
    # non-finite parameters scored as a finite number before (a NaN mean's
    # state was just never chosen); X whose variance overflows made them so
    fitted = GaussianHMM(n_components=2, random_state=0).fit(X, lengths)
    for name, value in (("means_", np.array([[np.nan, 0.0], [1.0, 1.0]])),
                        ("covars_", np.array([[np.inf, 1.0], [1.0, 1.0]]))):
        m = GaussianHMM(n_components=2, random_state=0).fit(X, lengths)
        setattr(m, name, value)
        for method in (m.score, m.predict, m.decode, m.score_samples):
            with pytest.raises(ValueError, match="must be finite"):
                method(X, lengths)
    with pytest.raises(ValueError, match="variance overflows float64"):
        GaussianHMM(n_components=2, random_state=0).fit(X * 1e200, lengths)
    assert np.isfinite(fitted.score(X, lengths))


def test_data_far_from_the_origin_keeps_its_precision(covariance_type):
    """Rows of 1e4 + noise of 0.01: the emission densities are computed on
    rows centred near the means, not from expanded squares that cancel."""
    X, lengths = _sequences(seed=8)
    ours, ref = _pair(covariance_type, n_iter=3)
    ours.fit(X, lengths)
    ref.fit(X, lengths)
    shifted, _ = _pair(covariance_type, n_iter=3, covars_prior=1e-6)  # the prior in the new units
    shifted.means_ = shifted.means_ * 0.01 + 1e4
    shifted.covars_ = shifted._covars_ * 1e-4
    shifted.fit(X * 0.01 + 1e4, lengths)
    np.testing.assert_allclose((shifted.means_ - 1e4) * 100, ours.means_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(shifted.transmat_, ours.transmat_, rtol=1e-6, atol=1e-9)


def test_fit_and_predict_leave_x_alone():
    X, lengths = _sequences(seed=9)
    before = X.copy()
    GaussianHMM(n_components=2, covariance_type="full", random_state=0).fit(X, lengths).predict(
        X, lengths)
    np.testing.assert_array_equal(X, before)


def test_a_collapsing_state_is_said_and_handled_as_hmmlearn_does():
    """Sequences of 40-79 steps (weighted 3, 3, 1, 3), 3 states, full
    covariances: at the fourth iteration one covariance is no longer
    positive-definite; hmmlearn adds
    1e-7 to its diagonal for the density, silently; fastem does the same and
    says so."""
    X, lengths = _sequences(seed=5, n_seq=4)
    ours, ref = _pair("full", n_iter=4)
    with pytest.warns(RuntimeWarning, match="not positive-definite"):
        ours.fit(X, lengths, sample_weight=[3, 3, 1, 3])
    bounds = np.r_[0, np.cumsum(lengths)]
    ref.fit(np.concatenate([X[bounds[i]:bounds[i + 1]] for i in (0, 0, 0, 1, 1, 1, 2, 3, 3, 3)]),
            np.repeat(lengths, [3, 3, 1, 3]))
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-8)


def test_model_file_round_trip_and_a_damaged_file(tmp_path):
    import zipfile

    from fastem import load

    X, lengths = _sequences(seed=10)
    for covariance_type in COVARIANCE_TYPES:
        m = GaussianHMM(n_components=3, covariance_type=covariance_type, random_state=0,
                        transmat_prior=np.full((3, 3), 1.5)).fit(X, lengths)
        m.save(tmp_path / "hmm.npz")
        again = load(tmp_path / "hmm.npz")
        assert isinstance(again, GaussianHMM) and again.get_params().keys() == m.get_params().keys()
        np.testing.assert_array_equal(again.transmat_prior, m.transmat_prior)
        np.testing.assert_array_equal(again.covars_, m.covars_)
        assert again.score(X, lengths) == m.score(X, lengths)
        np.testing.assert_array_equal(again.predict(X, lengths), m.predict(X, lengths))
    members = dict(np.load(tmp_path / "hmm.npz"))
    members["transmat"] = members["transmat"] * 2
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as z:
        for name, value in members.items():
            with z.open(name + ".npy", "w") as f:
                np.lib.format.write_array(f, value)
    with pytest.raises(ValueError, match="transmat"):
        load(tmp_path / "bad.npz")


_SCRIPT = """
import contextlib, hashlib, io, os, pathlib, sys, numpy as np
from fastem import GaussianHMM
fresh = not any(pathlib.Path(os.environ["NUMBA_CACHE_DIR"]).rglob("*.nbi"))
rng = np.random.default_rng(0)
X = np.r_[rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 3]
h = hashlib.sha256()
for c in ("diag", "full"):
    for i in ("log", "scaling"):
        m = GaussianHMM(3, covariance_type=c, implementation=i, random_state=0, n_iter=5,
                        verbose=True)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            m.fit(X, [100] * 6)
        lines = err.getvalue().splitlines()
        compiled = [line for line in lines if "compiling kernels" in line]
        # a first use compiles, and says so on a line of its own
        assert bool(compiled) == (m.compile_seconds_ > 0), lines
        assert not (fresh and c == "diag" and i == "log") or compiled, lines
        assert len(lines) - len(compiled) == m.monitor_.iter, lines
        h.update(m.means_.tobytes() + m.transmat_.tobytes() + m.predict_proba(X).tobytes())
    # a transition below SMALL_TRANSITION: the exact recursion's own drivers
    m.set_params(init_params="", n_iter=2)
    m.transmat_ = np.full((3, 3), 0.5) * [[1, 1, 0], [1, 1, 0], [1, 1, 0]] + [[0, 0, 1e-30]] * 3
    m.fit(X, [100] * 6)
    h.update(m.means_.tobytes() + m.score_samples(X, [100] * 6)[1].tobytes())
print(h.hexdigest())
"""


def test_compiled_afresh_or_loaded_from_the_cache_the_same_bits(tmp_path):
    """A new process compiling into an empty cache, one loading from it, and
    one on 2 threads fit the same bits (the kernels' helpers are inlined by
    LLVM and never cached, as the mixtures')."""
    same_bits_compiled_afresh_or_cached(_SCRIPT, tmp_path)


def test_every_method_refuses_what_fit_refuses():
    X, lengths = _sequences(seed=11)
    m = GaussianHMM(n_components=2, random_state=0).fit(X, lengths)
    nan = np.where(X > 3, np.nan, X)
    for method in (m.score, m.score_samples, m.predict, m.predict_proba, m.decode, m.aic, m.bic):
        with pytest.raises(ValueError, match="NaN|nan"):
            method(nan, lengths)
        with pytest.raises(ValueError, match="lengths sum to"):
            method(X, lengths[:-1])
        with pytest.raises(ValueError, match="features"):
            method(X[:, :1], lengths)
    with pytest.raises(ValueError, match="n_samples"):
        m.sample(0)


def _left_right_with_an_outlier():
    """A left-right chain (zeros in ``transmat_``) whose last steps hold an
    outlier that only a state the chain has left explains: the states it can
    reach give it a probability below 1e-400 relative, so a purely rescaled
    recursion underflows there (hmmlearn's 'scaling' gives -inf), while
    hmmlearn's log recursion does not."""
    start = np.array([1.0, 0.0, 0.0])
    trans = np.array([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]])
    means = np.array([[0.0], [10.0], [20.0]])
    covars = np.ones((3, 1))
    X = np.r_[np.zeros(5), np.full(5, 10.0), np.full(5, 20.0), [-80.0], np.full(3, 20.0)]
    models = []
    for cls in (GaussianHMM, hmm.GaussianHMM):
        m = cls(n_components=3, covariance_type="diag", init_params="", params="mc", n_iter=3)
        m.startprob_, m.transmat_, m.means_, m.covars_ = start, trans, means, covars
        models.append(m)
    return X[:, None], models


@pytest.mark.filterwarnings("ignore:GaussianHMM log-likelihood decreased")  # hmmlearn's too: MAP
@pytest.mark.parametrize("implementation", ["log", "scaling"])
def test_steps_that_would_underflow_agree_with_hmmlearns_log_recursion(implementation):
    X, (ours, ref) = _left_right_with_an_outlier()
    ours.implementation = implementation
    log_prob, post = ours.score_samples(X)
    ref_log_prob, ref_post = ref.score_samples(X)
    assert np.isfinite(log_prob) and log_prob < -1000
    np.testing.assert_allclose(log_prob, ref_log_prob, rtol=1e-10)
    np.testing.assert_allclose(post, ref_post, atol=1e-12)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-10)
    ours.fit(X)
    ref.fit(X)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-9)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-9)
    np.testing.assert_allclose(ours.covars_, ref.covars_, rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_long_sequence_alone_fits_the_same_model(monkeypatch, covariance_type, dtype):
    """Sequences of at least ``config.HMM_LONG_SEQUENCE`` steps run alone,
    emissions and statistics parallel over row parts: the same model as the
    fused pass over whole sequences, to round-off (float32 compute too)."""
    from fastem import config

    X, lengths = _sequences(seed=11, n_seq=5, length=300)
    X = (X + 50.0).astype(dtype)  # float32 compute then shifts its constants
    fits = []
    for threshold in (10**9, 200):  # none long, then the longer ones
        monkeypatch.setattr(config, "HMM_LONG_SEQUENCE", threshold)
        m, _ = _pair(covariance_type, n_iter=5, tol=-1e300)
        m.means_ = m.means_ + 50.0
        fits.append(m.fit(X, lengths, sample_weight=[1, 2, 0, 1, 3]))
    assert (lengths >= 200).any() and (lengths < 200).any()
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(fits[0].monitor_.history, fits[1].monitor_.history, rtol=rtol)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_allclose(getattr(fits[0], name), getattr(fits[1], name),
                                   rtol=1e3 * rtol, atol=1e3 * rtol)


def test_float32_computes_the_float64_model(covariance_type):
    """float32 data compute emissions and statistics in float32 (the mixtures'
    safeguards) and reach the float64 fit to float32's round-off."""
    X, lengths = _sequences(seed=12, n_seq=8, length=200)
    X32 = (X + 1e3).astype(np.float32)  # far from the origin: centred in float64 first
    fits = []
    for data, dtype in ((X32.astype(np.float64), None), (X32, None), (X32, np.float64)):
        m, _ = _pair(covariance_type, n_iter=6, tol=-1e300)
        m.means_, m.dtype = m.means_ + 1e3, dtype
        fits.append(m.fit(data, lengths))
    np.testing.assert_allclose(fits[1].monitor_.history, fits[0].monitor_.history, rtol=1e-6)
    np.testing.assert_allclose(fits[1].means_, fits[0].means_, rtol=1e-6)
    np.testing.assert_allclose(fits[1].transmat_, fits[0].transmat_, atol=1e-5)
    assert fits[1].monitor_.history != fits[0].monitor_.history  # it did compute in float32
    # dtype=np.float64 makes float32 data compute in float64: the same bits
    assert fits[2].monitor_.history == fits[0].monitor_.history


def test_a_dropped_state_that_the_data_favour_later_agrees_with_hmmlearn():
    """State 0 is left behind (its forward probability below 1e-300 relative
    after x = 40), and later steps (x = 12.5) favour it by e^300 a step
    while it can only be reached from itself: the rescaled recursion must not
    lose it, and fastem's answer is hmmlearn's log-space one."""
    start = np.array([1.0, 0.0])
    trans = np.array([[0.5, 0.5], [0.0, 1.0]])
    X = np.r_[0.0, 40.0, np.full(4, 12.5)][:, None]
    models = []
    for cls in (GaussianHMM, hmm.GaussianHMM):
        m = cls(n_components=2, covariance_type="diag", init_params="")
        m.startprob_, m.transmat_ = start, trans
        m.means_, m.covars_ = np.array([[0.0], [40.0]]), np.ones((2, 1))
        models.append(m)
    ours, ref = models
    log_prob, post = ours.score_samples(X)
    ref_log_prob, ref_post = ref.score_samples(X)
    np.testing.assert_allclose(log_prob, ref_log_prob, rtol=1e-12)
    np.testing.assert_allclose(post, ref_post, atol=1e-12)


def test_dask_arrays_fit_and_score_as_the_array_does(covariance_type):
    """A dask array whose chunks split sequences: its chunks are cut at
    sequence boundaries, and it fits the in-memory model (to round-off: the
    blocks' statistics are summed in another order) and scores, decodes and
    predicts exactly as the array does."""
    da = pytest.importorskip("dask.array")
    from fastem.backends.dask import at_sequence_boundaries
    from fastem.hmm import split_lengths

    X, lengths = _sequences(seed=3, n_seq=7, length=120)
    weights = np.arange(1.0, 8.0)
    Xd = da.from_array(X, chunks=100)
    bounds = split_lengths(len(X), lengths)
    edges = np.cumsum((0,) + at_sequence_boundaries(Xd, bounds).chunks[0])
    assert set(edges) <= set(bounds) and len(edges) > 2
    fits = []
    for data in (X, Xd):
        m, _ = _pair(covariance_type, n_iter=5, tol=-1e300)
        fits.append(m.fit(data, lengths, sample_weight=weights))
    np.testing.assert_allclose(fits[1].monitor_.history, fits[0].monitor_.history, rtol=1e-12)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_allclose(getattr(fits[1], name), getattr(fits[0], name), rtol=1e-9,
                                   atol=1e-12)
    m = fits[0]
    Xd = da.from_array(X, chunks=77)
    assert m.score(Xd, lengths) == m.score(X, lengths)
    np.testing.assert_array_equal(m.predict_proba(Xd, lengths), m.predict_proba(X, lengths))
    assert m.decode(Xd, lengths)[0] == m.decode(X, lengths)[0]
    np.testing.assert_array_equal(m.predict(Xd, lengths), m.predict(X, lengths))
    # the default initialisation (k-means on the workers, the covariance by Dask)
    a = GaussianHMM(3, random_state=0).fit(X, lengths)
    b = GaussianHMM(3, random_state=0).fit(Xd, lengths)
    np.testing.assert_allclose(b.monitor_.history, a.monitor_.history, rtol=1e-9)


def _posteriors_by_every_path(start, trans, logf):
    """State posteriors (n, k) and the most probable path by going over all
    k^n paths in 60-digit decimal arithmetic: exact for the float64
    emissions ``logf`` (n, k) whatever their range (small n only)."""
    import itertools
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    n, k = logf.shape
    lt, ls = np.log(trans), np.log(start)
    paths = list(itertools.product(range(k), repeat=n))
    logs = []
    for p in paths:
        v = Decimal(float(ls[p[0]])) + Decimal(float(logf[0, p[0]]))
        for t in range(1, n):
            v += Decimal(float(lt[p[t - 1], p[t]])) + Decimal(float(logf[t, p[t]]))
        logs.append(v)
    top = max(logs)
    weights = [(v - top).exp() for v in logs]
    total = sum(weights)
    post = np.zeros((n, k))
    for p, wgt in zip(paths, weights):
        for t in range(n):
            post[t, p[t]] += float(wgt / total)
    return post, np.array(paths[logs.index(top)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_step_far_from_every_state_keeps_the_other_steps_posteriors(dtype):
    """One step 1e25 standard deviations away: its log-density (-1e50)
    dwarfs the other steps' differences, which unshifted log-space messages
    lost (every state's posterior came out 1); float32 data overflow there
    and are computed in float64. Against the posteriors of every path."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 4]
    m = GaussianHMM(2, random_state=0).fit(X)
    Z = X[:5].copy()
    Z[2] *= 1e25
    Z = Z.astype(dtype)
    log_prob, post = m.score_samples(Z)
    Z64 = Z.astype(np.float64)
    logf = CPUBackend().sequence_passes(Z64, m._emission_inputs(), m.startprob_,
                                        m.transmat_).frames(Z64)
    want, path = _posteriors_by_every_path(m.startprob_, m.transmat_, logf)
    assert np.isfinite(log_prob) and log_prob < -1e40
    np.testing.assert_allclose(post.sum(axis=1), 1.0)
    np.testing.assert_allclose(post, want, atol=1e-6 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(m.predict_proba(Z), post)
    np.testing.assert_array_equal(m.decode(Z, algorithm="viterbi")[1], path)


def test_steps_beyond_float64s_range_are_refused_where_no_answer_exists():
    """A step 1e200 away overflows float64 in every state: ``score`` is -inf
    (the float64 value of log p), and the posteriors and the path, which do
    not exist in float64, are an error rather than arbitrary numbers."""
    X, lengths = _sequences(seed=5, n_seq=2, length=60)
    m = GaussianHMM(K, random_state=0, n_iter=3).fit(X, lengths)
    Z = X.copy()
    Z[3] *= 1e200
    assert m.score(Z, lengths) == -np.inf
    for method in (m.predict, m.predict_proba, m.score_samples, m.decode):
        with pytest.raises(ValueError, match="overflow float64"):
            method(Z, lengths)


def test_a_state_never_left_keeps_its_transition_row_and_the_model_stays_usable():
    """Sequences of one step show no transition: hmmlearn zeroes every row of
    transmat_ (a model no two-step sequence could have), which fastem's
    every other method then refused. The rows keep their previous values,
    with a warning, and the fitted model scores and decodes."""
    X, _ = _sequences(seed=7, n_seq=2, length=60)
    m = GaussianHMM(K, random_state=0, n_iter=3)
    with pytest.warns(RuntimeWarning, match=f"{K} row\\(s\\) of transmat_ kept"):
        m.fit(X, lengths=np.ones(len(X), dtype=int))
    np.testing.assert_allclose(m.transmat_.sum(axis=1), 1.0)
    assert np.isfinite(m.score(X[:10]))
    assert m.predict(X[:10]).shape == (10,)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a later fit with transitions: no warning
        m.fit(X, lengths=[len(X)])


@pytest.mark.parametrize("name", ["startprob_prior", "transmat_prior", "means_weight",
                                  "covars_prior", "covars_weight"])
def test_negative_priors_are_refused(name):
    X, _ = _sequences(seed=8, n_seq=1, length=40)
    with pytest.raises(ValueError, match=f"'{name}'.*>= 0"):
        GaussianHMM(2, **{name: -1.0}).fit(X)
    GaussianHMM(2, means_prior=-3.0, n_iter=2, random_state=0).fit(X)  # a mean may be negative


@pytest.mark.parametrize("name, value", [
    ("transmat_prior", np.ones((3, 3))), ("startprob_prior", np.ones(3)),
    ("means_prior", np.zeros(5)), ("means_weight", np.ones((2, 2))),
    ("covars_prior", np.ones((3, 2))), ("covars_weight", np.ones(5))])
def test_a_prior_of_the_wrong_shape_is_refused_by_name(name, value):
    X, _ = _sequences(seed=8, n_seq=1, length=40)
    with pytest.raises(ValueError, match=f"'{name}' has shape"):
        GaussianHMM(2, **{name: value}).fit(X)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full", "tied"])
def test_priors_with_one_value_per_state(covariance_type):
    """A 1-D prior of n_components values is per state, also when
    n_features == n_components (NumPy would apply it per feature); the same
    value for every state is the float, bit for bit."""
    X, _ = _sequences(seed=3, n_seq=2, length=60)
    X = X[:, :2]
    kw = dict(n_iter=3, random_state=0, covariance_type=covariance_type)
    per_state = dict(means_prior=[0.5, 0.5], means_weight=[2.0, 2.0],
                     covars_weight=[3.0, 3.0] if covariance_type != "tied" else 3.0,
                     covars_prior=[0.1, 0.1] if covariance_type != "tied" else 0.1)
    a = GaussianHMM(2, **kw, **per_state).fit(X)
    b = GaussianHMM(2, **kw, means_prior=0.5, means_weight=2.0, covars_weight=3.0,
                    covars_prior=0.1).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covars_, b.covars_)
    # a state whose mean has an overwhelming prior stays at it; the other does not
    c = GaussianHMM(2, **kw, means_prior=[[7.0, -7.0], [0.0, 0.0]], means_weight=[1e12, 0.0]
                    ).fit(X)
    np.testing.assert_allclose(c.means_[0], [7.0, -7.0], atol=1e-6)
    assert np.abs(c.means_[1] - [7.0, -7.0]).min() > 1.0


def test_get_stationary_distribution_is_left_invariant():
    m = GaussianHMM(3, init_params="", params="")
    m.startprob_ = np.array([1.0, 0.0, 0.0])
    m.transmat_ = np.array([[0.8, 0.15, 0.05], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]])
    m.means_, m.covars_ = np.zeros((3, 1)), np.ones((3, 1))
    pi = m.get_stationary_distribution()
    np.testing.assert_allclose(pi @ m.transmat_, pi, atol=1e-12)
    assert pi.min() > 0 and abs(pi.sum() - 1.0) < 1e-12
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    ref = hmmlearn.GaussianHMM(3, init_params="")
    ref.transmat_ = m.transmat_
    np.testing.assert_allclose(pi, ref.get_stationary_distribution(), rtol=1e-12)
    # it refuses what the other methods refuse
    from fastem import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianHMM(3).get_stationary_distribution()
    m.transmat_ = m.transmat_ * 2
    with pytest.raises(ValueError, match="transmat_ rows"):
        m.get_stationary_distribution()


def test_sample_refuses_a_state_the_model_does_not_have():
    X, _ = _sequences(seed=8, n_seq=1, length=40)
    m = GaussianHMM(2, n_iter=2, random_state=0).fit(X)
    for bad in (2, -1, 1.5):
        with pytest.raises(ValueError, match="currstate"):
            m.sample(3, currstate=bad)
    assert m.sample(3, currstate=1)[1][0] == 1


def test_sample_weight_of_the_wrong_length_says_one_per_sequence():
    X, _ = _sequences(seed=8, n_seq=1, length=40)
    with pytest.raises(ValueError, match="one per sequence"):
        GaussianHMM(2).fit(X, lengths=[len(X) - 10, 10], sample_weight=np.ones(len(X)))


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full", "tied"])
def test_a_state_no_sequence_reaches_keeps_its_parameters(covariance_type):
    """startprob_ 0 and no transition into state 2: it has no posterior mass,
    so its update is 0/0 (hmmlearn: NaN means, then an error). It keeps its
    means_ and covars_, with a warning; a prior on the means still moves
    them to means_prior, as hmmlearn's formula does."""
    X, _ = _sequences(seed=5, n_seq=1, length=120)
    X = X[:, :2]

    def model(**kw):
        m = GaussianHMM(3, covariance_type=covariance_type, init_params="", n_iter=3, **kw)
        m.startprob_ = np.array([0.5, 0.5, 0.0])
        m.transmat_ = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.3, 0.3, 0.4]])
        m.means_ = np.array([[0.0, 0.0], [3.0, 3.0], [6.0, 6.0]])
        m.covars_ = {"spherical": np.ones(3), "diag": np.ones((3, 2)),
                     "full": np.array([np.eye(2)] * 3), "tied": np.eye(2)}[covariance_type]
        return m

    before = model().covars_
    with pytest.warns(RuntimeWarning, match=r"state\(s\) \[2\] had no posterior mass"):
        m = model().fit(X)
    assert np.all(np.isfinite(m.means_)) and np.all(np.isfinite(m.covars_))
    np.testing.assert_array_equal(m.means_[2], [6.0, 6.0])
    if covariance_type != "tied":
        np.testing.assert_array_equal(m.covars_[2], before[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = model(means_weight=1.0, means_prior=-1.0).fit(X)
    np.testing.assert_allclose(prior.means_[2], [-1.0, -1.0])


def test_a_full_state_on_one_point_is_an_error_that_says_what_helps():
    """As in hmmlearn, four states on four points with full covariances
    fail; the error says why and what to change."""
    X = np.random.default_rng(4).normal(size=(4, 2))
    with pytest.raises(ValueError, match=r"state \d's is not.*covariance_type='diag'"):
        GaussianHMM(4, covariance_type="full", random_state=0).fit(X)


def test_verbose_prints_hmmlearns_lines(capsys):
    """The fit runs on the mixtures' EM driver; with ``verbose`` it prints
    hmmlearn's line per iteration (iteration, log-likelihood, gain) to
    stderr, and ``monitor_`` holds the same figures."""
    X, lengths = _sequences()
    printed = []
    for m in _pair("diag", n_iter=6, tol=1e-6, verbose=True):
        m.fit(X, lengths)
        err = capsys.readouterr().err
        printed.append(np.array([[float(v) for v in line.split()] for line in err.splitlines()
                                 if line.strip() and "compiling kernels" not in line]))
        assert len(printed[-1]) == m.monitor_.iter
    ours, ref = printed
    np.testing.assert_array_equal(ours[:, 0], np.arange(1, len(ours) + 1))
    np.testing.assert_allclose(ours[:, 1], ref[:, 1], rtol=1e-8)
    np.testing.assert_allclose(ours[1:, 2], ref[1:, 2], rtol=1e-5, atol=1e-6)
    assert np.isnan(ours[0, 2]) and np.isnan(ref[0, 2])
