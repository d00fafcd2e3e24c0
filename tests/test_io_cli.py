"""Model files, memory-mapped input and the command line."""

import json
import pickle
import tracemalloc
import warnings

import numpy as np
import pytest

import fastem

from conftest import make_blobs
from fastem import GaussianMixture, load
from fastem.cli import main
from fastem.model_file import FORMAT_VERSION

X, _ = make_blobs(n=600, d=3, k=3, seed=11, dtype=np.float32)


@pytest.fixture(scope="module")
def fitted():
    return GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)


def test_save_load_round_trip(tmp_path, fitted):
    path = tmp_path / "model.npz"
    fitted.save(path)
    again = GaussianMixture.load(path)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(again, name), getattr(fitted, name))
    assert again.get_params() == fitted.get_params()
    assert again.lower_bounds_ == fitted.lower_bounds_ and again.n_iter_ == fitted.n_iter_
    np.testing.assert_array_equal(again.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(load(path).score_samples(X), fitted.score_samples(X))


def test_loaded_model_warm_starts(tmp_path, fitted):
    fitted.save(tmp_path / "m.npz")
    again = GaussianMixture.load(tmp_path / "m.npz").set_params(warm_start=True, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again.fit(X)
    assert again.n_iter_ <= 2 and np.isfinite(again.lower_bound_)


def _rewrite(path, **changes):
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads(data["metadata"].tobytes())
    meta.update(changes)
    data["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **data)


def test_future_format_version_is_refused(tmp_path, fitted):
    path = tmp_path / "m.npz"
    fitted.save(path)
    _rewrite(path, format_version=FORMAT_VERSION + 1)
    with pytest.raises(ValueError, match="Upgrade fastem"):
        load(path)


@pytest.mark.parametrize("content", [b"not a zip file", b""])
def test_garbage_model_file(tmp_path, content):
    path = tmp_path / "m.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a fastem model file"):
        load(path)


def test_model_file_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, weights=np.ones(1), means=np.ones((1, 1)), covariances=np.ones((1, 1, 1)),
             precisions_cholesky=np.ones((1, 1, 1)), metadata=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="damaged or altered fastem model file .metadata: has "
                                         "dtype object"):
        load(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.npz")


def test_pickle_of_fitted_estimator(fitted):
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))


def test_memory_mapped_fit_reads_in_place(tmp_path):
    Xm_big, _ = make_blobs(n=200_000, d=8, k=4, seed=12, dtype=np.float32)
    np.save(tmp_path / "X.npy", Xm_big)
    del Xm_big
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    kw = dict(n_components=4, random_state=0, max_iter=3, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(**kw).fit(Xm[:1000])  # compile outside the measurement
        tracemalloc.start()
        gm = GaussianMixture(**kw).fit(Xm)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        ref = GaussianMixture(**kw).fit(np.array(Xm))
    # No copy or float64 conversion of X (6.4 MB): only O(n) labels and chunks.
    assert peak < 0.6 * Xm.nbytes, peak
    assert gm.means_.tobytes() == ref.means_.tobytes()
    labels = gm.predict(Xm)
    np.testing.assert_array_equal(labels, ref.predict(np.array(Xm)))


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

@pytest.fixture
def data_files(tmp_path):
    np.save(tmp_path / "X.npy", X)
    np.savetxt(tmp_path / "X.csv", X, delimiter=",", header="a,b,c", comments="")
    return tmp_path


def test_cli_fit_predict_info(data_files, capsys):
    d = data_files
    assert main(["fit", str(d / "X.npy"), "--n-components", "3", "--covariance-type", "diag",
                 "--random-state", "0", "--out", str(d / "m.npz")]) == 0
    out = capsys.readouterr()
    assert "model written" in out.out and "iter" in out.err  # progress bar on stderr
    with pytest.warns(UserWarning, match="X has feature names, but GaussianMixture was fitted "
                                         "without feature names"):  # the CSV names its columns
        assert main(["predict", str(d / "m.npz"), str(d / "X.csv"), "--out", str(d / "l.npy")]) == 0
    labels = np.load(d / "l.npy")
    ref = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X).predict(X)
    np.testing.assert_array_equal(labels, ref)
    assert main(["predict", str(d / "m.npz"), str(d / "X.npy"), "--out", str(d / "p.csv"),
                 "--proba"]) == 0
    assert np.loadtxt(d / "p.csv", delimiter=",").shape == (len(X), 3)
    assert main(["info", str(d / "m.npz")]) == 0
    assert "3 components" in capsys.readouterr().out


def test_cli_csv_header_names_the_features(data_files, capsys):
    d = data_files
    assert main(["fit", str(d / "X.csv"), "--n-components", "3", "--random-state", "0",
                 "--out", str(d / "named.npz"), "--quiet"]) == 0
    assert main(["info", str(d / "named.npz")]) == 0
    assert "feature names: a, b, c" in capsys.readouterr().out
    np.testing.assert_array_equal(fastem.load(d / "named.npz").feature_names_in_, ["a", "b", "c"])
    assert main(["predict", str(d / "named.npz"), str(d / "X.csv"), "--out", str(d / "l.npy")]) == 0
    # The same numbers under other column names: refused, not silently scored.
    np.savetxt(d / "swapped.csv", X[:, [1, 0, 2]], delimiter=",", header="b,a,c", comments="")
    _fails(["predict", str(d / "named.npz"), str(d / "swapped.csv"), "--out", str(d / "o.npy")],
           capsys, "same order as they were in fit", d / "o.npy")


def _fails(args, capsys, match, absent):
    assert main(args) == 2
    assert match in capsys.readouterr().err
    assert not absent.exists()


def test_cli_never_writes_over_its_inputs_or_one_output_over_another(data_files, capsys):
    """``--out`` naming the data or the model read (`predict m.npz X.csv --out
    X.csv` replaced the data with labels), or two options naming one file
    (one of them silently lost): refused before any work, files untouched."""
    d = data_files
    assert main(["fit", str(d / "X.npy"), "--n-components", "2", "--out", str(d / "m.npz"),
                 "--quiet"]) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in (d / "X.csv", d / "X.npy", d / "m.npz")}
    cases = [
        (["predict", str(d / "m.npz"), str(d / "X.csv"), "--out", str(d / "X.csv")], "the input"),
        (["predict", str(d / "m.npz"), str(d / "X.npy"), "--out", str(d / "m.npz")], "the input"),
        (["impute", str(d / "X.csv"), "--out", str(d / "." / "X.csv"), "--n-components", "2"],
         "the input"),
        (["impute", str(d / "X.csv"), "--out", str(d / "f.csv"), "--model-out", str(d / "f.csv"),
          "--n-components", "2"], "another output (--out)"),
        (["fit", str(d / "X.npy"), "--n-components", "2", "--out", str(d / "a.npz"),
          "--plot", str(d / "a.npz")], "another output (--out)"),
    ]
    for args, match in cases:
        assert main(args) == 2
        assert match in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before
    assert not (d / "f.csv").exists() and not (d / "a.npz").exists()


def test_cli_bad_inputs(data_files, capsys):
    d = data_files
    (d / "ragged.csv").write_text("1,2,3\n4,5\n")
    (d / "text.csv").write_text("a,b\nx,y\n")
    (d / "junk.npy").write_bytes(b"garbage")
    (d / "two.csv").write_text("1,2\n3,4\n5,6\n")
    main(["fit", str(d / "X.npy"), "--n-components", "2", "--out", str(d / "m.npz"), "--quiet"])
    capsys.readouterr()
    _fails(["fit", str(d / "ragged.csv"), "--n-components", "2", "--out", str(d / "o.npz")],
           capsys, "malformed CSV", d / "o.npz")
    _fails(["fit", str(d / "text.csv"), "--n-components", "1", "--out", str(d / "o.npz")],
           capsys, "malformed CSV", d / "o.npz")
    _fails(["fit", str(d / "junk.npy"), "--n-components", "2", "--out", str(d / "o.npz")],
           capsys, "not a readable .npy", d / "o.npz")
    _fails(["fit", str(d / "missing.npy"), "--n-components", "2", "--out", str(d / "o.npz")],
           capsys, "not found", d / "o.npz")
    _fails(["predict", str(d / "m.npz"), str(d / "two.csv"), "--out", str(d / "o.npy")],
           capsys, "fitted on 3 features", d / "o.npy")
    _fails(["predict", str(d / "X.npy"), str(d / "X.npy"), "--out", str(d / "o.npy")],
           capsys, "not a fastem model file", d / "o.npy")
    _rewrite(d / "m.npz", format_version=FORMAT_VERSION + 5)
    _fails(["predict", str(d / "m.npz"), str(d / "X.npy"), "--out", str(d / "o.npy")],
           capsys, "Upgrade fastem", d / "o.npy")
    _fails(["info", str(d / "m.npz")], capsys, "Upgrade fastem", d / "o.npy")
    _fails(["fit", str(d / "X.npy"), "--n-components", "2", "--out", str(d / "o.txt")],
           capsys, "error", d / "o.txt")


def test_cli_parquet(data_files, capsys):
    d = data_files
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        _fails(["fit", str(d / "X.parquet"), "--n-components", "2", "--out", str(d / "o.npz")],
               capsys, "not found", d / "o.npz")
        (d / "X.parquet").write_bytes(b"PAR1")
        _fails(["fit", str(d / "X.parquet"), "--n-components", "2", "--out", str(d / "o.npz")],
               capsys, "needs pyarrow", d / "o.npz")
        return
    pq.write_table(pa.table({c: X[:, i] for i, c in enumerate("abc")}), d / "X.parquet")
    assert main(["fit", str(d / "X.parquet"), "--n-components", "3", "--out", str(d / "m.npz"),
                 "--quiet"]) == 0


def test_cli_fits_a_bayesian_mixture(data_files, capsys):
    d = data_files
    assert main(["fit", str(d / "X.npy"), "--n-components", "6", "--model", "bayesian",
                 "--weight-prior", "dirichlet_distribution", "--random-state", "0",
                 "--out", str(d / "b.npz"), "--quiet"]) == 0
    model = fastem.load(d / "b.npz")
    assert type(model) is fastem.BayesianGaussianMixture
    assert model.weight_concentration_prior_type == "dirichlet_distribution"
    ref = fastem.BayesianGaussianMixture(n_components=6, random_state=0,
                                         weight_concentration_prior_type="dirichlet_distribution"
                                         ).fit(X)
    np.testing.assert_array_equal(model.means_, ref.means_)
    assert main(["info", str(d / "b.npz")]) == 0
    assert "(BayesianGaussianMixture)" in capsys.readouterr().out
    assert main(["predict", str(d / "b.npz"), str(d / "X.npy"), "--out", str(d / "l.npy")]) == 0
    np.testing.assert_array_equal(np.load(d / "l.npy"), ref.predict(X))


def test_cli_info_and_predict_for_latent_models(data_files, capsys):
    d = data_files
    fastem.PPCA(2).fit(X).save(d / "p.npz")
    assert main(["info", str(d / "p.npz")]) == 0
    out = capsys.readouterr().out
    assert "(PPCA)" in out and "2 latent dimensions" in out and "noise variance" in out
    _fails(["predict", str(d / "p.npz"), str(d / "X.npy"), "--out", str(d / "o.npy")],
           capsys, "no component labels", d / "o.npy")


def test_cli_demo_runs_and_reports(capsys):
    assert main(["demo", "--n-samples", "3000", "--n-features", "3", "--n-components", "2",
                 "--max-iter", "20"]) == 0
    out = capsys.readouterr().out
    assert "summary" in out and "final mean log-likelihood" in out
    assert "components recovered: 2 of 2" in out


# ----------------------------------------------------------------------------
# Data files and outputs as a careful user needs them (#24 items 5, 7, 10, 11, 14)
# ----------------------------------------------------------------------------

def test_csv_byte_order_mark_is_not_part_of_the_data_or_the_names(tmp_path):
    from fastem.io import read_data

    (tmp_path / "bom.csv").write_text("\ufeff1,2\n3,4\n5,6\n", encoding="utf-8")
    X = read_data(tmp_path / "bom.csv")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
    (tmp_path / "bomh.csv").write_text("\ufeffa,b\n1,2\n3,4\n5,6\n", encoding="utf-8")
    (tmp_path / "h.csv").write_text("a,b\n1,2\n3,4\n5,6\n", encoding="utf-8")
    named = read_data(tmp_path / "bomh.csv")
    assert named.columns == ["a", "b"]
    gm = GaussianMixture(1).fit(named)
    gm.predict(read_data(tmp_path / "h.csv"))  # the same names without the mark: accepted


def test_csv_with_a_header_and_no_rows_is_a_clear_error(tmp_path):
    """It read as an array of shape (0, 1) (one feature, not the header's two),
    and NumPy's "input contained no data" warning came first."""
    from fastem.io import read_data

    for text in ("a,b\n", "a,b\n\n", "a,b"):
        (tmp_path / "h.csv").write_text(text, encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="h.csv: a header and no rows of data"):
                read_data(tmp_path / "h.csv")


def test_csv_quoted_header_and_numeric_header(tmp_path, capsys):
    from fastem.io import read_data

    (tmp_path / "q.csv").write_text('"x, metres",y\n1,2\n3,4\n', encoding="utf-8")
    assert read_data(tmp_path / "q.csv").columns == ["x, metres", "y"]
    (tmp_path / "years.csv").write_text("2019,2020,2021\n1,2,3\n4,5,6\n7,8,9\n")
    assert np.asarray(read_data(tmp_path / "years.csv")).shape == (4, 3)  # documented default
    named = read_data(tmp_path / "years.csv", header=True)
    assert named.columns == ["2019", "2020", "2021"] and named.shape == (3, 3)
    with pytest.raises(ValueError, match="malformed CSV"):
        read_data(tmp_path / "q.csv", header=False)
    assert main(["fit", str(tmp_path / "years.csv"), "--header", "--n-components", "1",
                 "--out", str(tmp_path / "m.npz"), "--quiet"]) == 0
    assert list(fastem.load(tmp_path / "m.npz").feature_names_in_) == ["2019", "2020", "2021"]


def test_parquet_timestamps_and_strings_are_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from fastem.io import read_data

    times = np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[s]")
    pq.write_table(pa.table({"t": times, "x": [1.0, 2.0, 3.0]}), tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="column 't' has type timestamp"):
        read_data(tmp_path / "t.parquet")
    pq.write_table(pa.table({"s": ["a", "b", "c"]}), tmp_path / "s.parquet")
    with pytest.raises(ValueError, match="column 's' has type string"):
        read_data(tmp_path / "s.parquet")


def test_fit_with_an_unwritable_plot_leaves_no_model(data_files, capsys):
    pytest.importorskip("matplotlib")
    d = data_files
    _fails(["fit", str(d / "X.npy"), "--n-components", "2", "--out", str(d / "m.npz"),
            "--plot", str(d / "missing-folder" / "plot.png"), "--quiet"],
           capsys, "missing-folder/plot.png", d / "m.npz")
    assert [p.name for p in d.iterdir() if p.name.startswith(".")] == []
    assert main(["fit", str(d / "X.npy"), "--n-components", "2", "--out", str(d / "m.npz"),
                 "--plot", str(d / "plot.png"), "--quiet"]) == 0
    assert (d / "m.npz").exists() and (d / "plot.png").stat().st_size > 0


def test_info_escapes_non_printable_feature_names(tmp_path, capsys):
    names = ["\x1b[31mred", "new\nline", "café"]

    class Frame:  # a dataframe-like with hostile column names
        columns = np.array(names, dtype=object)

        def __array__(self, dtype=None, copy=None):
            return X.astype(np.float64)

    GaussianMixture(2, random_state=0).fit(Frame()).save(tmp_path / "m.npz")
    assert main(["info", str(tmp_path / "m.npz")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred" in out and "new\\nline" in out and "café" in out


@pytest.mark.parametrize("args, match", [
    (["--n-components", "0"], "--n-components must be at least 1, got 0"),
    (["--n-samples", "5", "--n-components", "6"], "--n-samples (5) must be at least"),
])
def test_demo_refuses_bad_sizes_with_a_clear_message(args, match, capsys):
    assert main(["demo", *args]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_cli_impute_csv_with_empty_cells(tmp_path, capsys):
    """``fastem impute``: empty cells and NA are missing values; the output
    keeps the header and the observed values, and equals the imputer's."""
    from fastem import GaussianMixtureImputer

    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 1))
    data = np.c_[z, 2 * z + 0.1 * rng.normal(size=(300, 1)), rng.normal(size=(300, 1))]
    holes = data.copy()
    holes[rng.random(data.shape) < 0.1] = np.nan
    def cell(value, i):
        if np.isnan(value):
            return "NA" if i % 2 else ""
        return repr(float(value))

    lines = ["a,b,c"] + [",".join(cell(v, i) for v in row) for i, row in enumerate(holes)]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    assert main(["impute", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.csv"),
                 "--model-out", str(tmp_path / "gm.npz")]) == 0
    assert "missing values" in capsys.readouterr().out
    out = (tmp_path / "out.csv").read_text().splitlines()
    assert out[0] == "a,b,c"
    filled = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
    expected = GaussianMixtureImputer(random_state=0).fit_transform(holes)
    np.testing.assert_array_equal(filled, expected)
    assert load(tmp_path / "gm.npz").n_features_in_ == 3
    assert main(["impute", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.txt")]) == 2
    assert "must end in .npy or .csv" in capsys.readouterr().err
