"""The benchmark suite itself works: asv discovers it, and the comparison and
out-of-core scripts run end to end on tiny inputs (no timings are asserted)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The scripts import this checkout's fastem, as the tests themselves do
#: (``python -m pytest`` runs in the checkout), rather than a copy of it
#: installed in site-packages: one copy, one Numba cache, so what the tests
#: compiled is not compiled again for the copy.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                os.environ.get("PYTHONPATH")])))


def test_asv_check():
    if shutil.which("asv") is None:
        pytest.skip("asv is not installed")
    out = subprocess.run(["asv", "check", "--python=same"], cwd=ROOT, env=ENV, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No problems found" in out.stdout


def _run_compare(tmp_path, libs, configs, iters, runs=1):
    """Run compare.py; returns its JSON results and its stdout."""
    result = tmp_path / "r.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--iters", str(iters),
           "--runs", str(runs), "--libs", libs, "--json", str(result), "--peak-size", "400"]
    for spec in configs:
        cmd += ["--config", spec]
    out = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(result.read_text()), out.stdout


def test_compare_script_runs(tmp_path):
    pytest.importorskip("sklearn")
    # the first runs in both dtypes (the default), the second in the one it names
    configs = ("full:3000:3:2", "diag:3000:4:3:float64")
    data, stdout = _run_compare(tmp_path, "fastem,sklearn", configs, 2, runs=2)
    assert data["dgemm_gflops"] > 0
    assert data["machine"]["cpu_simd"] in ("AVX-512", "AVX2", "other")
    specs = ["full:3000:3:2:float64", "full:3000:3:2:float32", "diag:3000:4:3:float64"]
    for spec in specs:
        target = data["targets"][spec]
        assert set(data[spec]) == {"fastem", "sklearn"}
        assert all(v["seconds_per_iter"] > 0 for v in data[spec].values())
        # what 20x asks of the machine, from this run's scikit-learn time and dgemm peak
        assert target["seconds_per_iter"] == pytest.approx(data[spec]["sklearn"]["seconds_per_iter"] / 20)
        assert target["fraction_of_peak"] == pytest.approx(target["gflops"] / data["dgemm_gflops"])
    assert stdout.count("20x scikit-learn needs") == len(specs)
    # both libraries reached the same log-likelihood from the same start
    lines = [line.split() for line in stdout.splitlines() if line.strip().startswith(("fastem", "sklearn"))]
    assert len(lines) == 2 * len(specs)
    assert lines[0][-1] == lines[1][-1]
    # float32 against float64 of each library, from the same run
    assert "float32 against float64" in stdout
    assert "diag:3000:4:3:float32" not in data
    for c in configs[:1]:
        for lib in ("fastem", "sklearn"):
            r32, r64 = data[f"{c}:float32"][lib], data[f"{c}:float64"][lib]
            assert r32["float32_speedup"] > 0
            assert r32["float32_relative_ll_difference"] < 1e-4
            # one median per round, and the ratio of each round's pair
            assert len(r32["round_medians"]) == len(r64["round_medians"]) == 2
            assert r32["float32_speedup_rounds"] == pytest.approx(
                [a / b for a, b in zip(r64["round_medians"], r32["round_medians"])])


def test_compare_mlpack_worker(tmp_path):
    pytest.importorskip("mlpack")
    configs = ("full:30000:3:2:float64", "diag:30000:4:3:float64")
    data, _ = _run_compare(tmp_path, "mlpack", configs, 5)
    for spec in configs:
        assert set(data[spec]) == {"mlpack"}
        assert data[spec]["mlpack"]["seconds_per_iter"] > 0


def test_out_of_core_script_runs(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "out_of_core.py"),
                          "--dir", str(tmp_path), "--gigabytes", "0.005", "--n-features", "4",
                          "--n-components", "2"], cwd=ROOT, env=ENV, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rows/s" in out.stdout and "peak RSS" in out.stdout
    assert not list(tmp_path.glob("*.npy"))  # the data file is removed


def test_kernel_roofline_script_runs():
    """kernel_roofline.py times every step of a pass, the full statistics split
    into their steps, on tiny shapes (one dtype, both families, to keep CI short)."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kernel_roofline.py"),
                          "--config", "full:5:3", "--config", "diag:6:3", "--dtypes", "float32",
                          "--reps", "2", "--peak-size", "300"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dgemm peak on one thread in this run" in out.stdout
    sections = out.stdout.split("\n\n")[1:]
    assert [s.splitlines()[0] for s in sections] == ["full d=5 k=3 float32", "diag d=6 k=3 float32"]
    steps = {s.splitlines()[0]: [line.split()[0] for line in s.splitlines()[2:]] for s in sections}
    assert steps["full d=5 k=3 float32"] == ["log-densities", "responsibilities", "statistics",
                                             "centring", "first", "second"]
    assert steps["diag d=6 k=3 float32"] == ["log-densities", "responsibilities", "statistics"]


def test_gpu_compare_script_on_cpu(tmp_path):
    """The PyTorch reference EM agrees with fastem (run on the CPU; the GPU
    figures come from running the same script on a GPU machine)."""
    pytest.importorskip("torch")
    result = tmp_path / "g.json"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_compare.py"),
                          "--device", "cpu", "--n-samples", "4000", "--features", "3",
                          "--components", "2", "--dtypes", "float64", "--iters", "3",
                          "--impls", "fastem-cpu,torch", "--json", str(result),
                          "--peak-size", "300"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads(result.read_text())["results"]
    for spec, rows in res.items():
        lls = [r["final_log_likelihood"] for r in rows.values()]
        assert lls[0] == pytest.approx(lls[1], rel=1e-9), spec


def test_gpu_check_rehearsal_under_the_simulator(tmp_path):
    """benchmarks/gpu_check.py, the one command for a GPU machine, runs end to
    end under numba's CUDA simulator on its tiny grid (a subset of the CUDA
    tests, to keep CI short; the full tests/cuda suite runs in test_cuda_backend)."""
    pytest.importorskip("numba.cuda")
    env = dict(ENV, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path),
                          "--tiny", "--tests-k", "fit_on_cuda_equals_cpu or log_prob_matches_cpu"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["machine"]["simulator"] is True
    assert report["tests"]["ok"] and report["tests"]["passed"] >= 3
    assert "passed" in (tmp_path / "tests.txt").read_text()
    ran = [row for row in report["grid"] if "results" in row]
    assert {(row["covariance_type"], row["dtype"]) for row in ran} == {
        ("full", "float32"), ("full", "float64"), ("diag", "float32"), ("diag", "float64")}
    for row in ran:
        assert set(row["results"]) >= {"fastem-cuda", "fastem-cpu"} and row["agree"]
        assert all(r["seconds_per_iter"] > 0 for r in row["results"].values())
    hmm = [row for row in report["hmm"] if "results" in row]
    assert {row["covariance_type"] for row in hmm} == {"diag", "full"}
    assert all(row["agree"] and row["results"]["cuda"]["seconds_per_iter"] > 0 for row in hmm)
    missing = [row for row in report["missing"] if "results" in row]
    assert {(row["covariance_type"], row["dtype"]) for row in missing} == {
        ("full", "float32"), ("full", "float64")}
    assert all(row["agree"] and row["results"]["cuda"]["seconds_per_iter"] > 0
               for row in missing)
    summary = (tmp_path / "summary.txt").read_text()
    assert "CUDA tests: " in summary and "fastem-cuda" in summary and "ok: True" in summary
    assert "GaussianHMM diag" in summary and "incomplete data full" in summary


def test_gpu_check_reports_a_spent_budget(tmp_path):
    """Configurations beyond the time budget are listed as skipped, not dropped."""
    pytest.importorskip("numba.cuda")
    env = dict(ENV, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path),
                          "--tiny", "--budget-s", "0", "--tests-k", "log_prob_matches_cpu"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert all(row.get("skipped") == "time budget spent"
               for row in report["grid"] + report["hmm"]), out.stdout
    assert "skipped: time budget spent" in (tmp_path / "summary.txt").read_text()


def test_compare_times_the_variational_model(tmp_path):
    """compare.py's BayesianGaussianMixture workers start from one posterior and
    reach the same bound (fastem vs scikit-learn)."""
    pytest.importorskip("sklearn")
    result = tmp_path / "vb.json"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare.py"),
                          "--config", "full:3000:3:3:float64", "--iters", "2",
                          "--libs", "fastem-vb,sklearn-vb", "--json", str(result),
                          "--peak-size", "300"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = json.loads(result.read_text())["full:3000:3:3:float64"]
    assert set(rows) == {"fastem-vb", "sklearn-vb"}
    assert rows["sklearn-vb"]["speedup"] == pytest.approx(1.0)
    lls = [float(line.split()[-1]) for line in out.stdout.splitlines()
           if line.strip().startswith(("fastem-vb", "sklearn-vb"))]
    assert len(lls) == 2 and lls[0] == pytest.approx(lls[1], rel=1e-10)


def test_vae_scripts_run(tmp_path):
    """vae_speed.py (fastem vs plain PyTorch) and vae_digits.py (figures and a
    picture) run end to end on tiny settings; the picture is a non-blank PNG."""
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    result = tmp_path / "speed.json"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vae_speed.py"),
                          "--n-samples", "3000", "--n-features", "8", "--hidden", "16",
                          "--epochs", "2", "--json", str(result)],
                         cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    speed = json.loads(result.read_text())
    assert speed["fastem"]["rows_per_second"] > 0 and speed["plain-pytorch"]["rows_per_second"] > 0
    png, figures = tmp_path / "digits.png", tmp_path / "digits.json"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vae_digits.py"),
                          "--epochs", "2", "--out", str(png), "--json", str(figures)],
                         cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[0] > 100 and image.shape[1] > 300 and image.std() > 0.05
    f = json.loads(figures.read_text())
    assert np.isfinite(f["vae_elbo_per_row_test"]) and np.isfinite(f["ppca_loglik_per_row_test"])


def test_sweep_script_runs(tmp_path):
    """benchmarks/sweep.py times the shared-pass sweep against separate fits and
    counts passes (tiny, in RAM and on a memory map)."""
    result = tmp_path / "sweep.json"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sweep.py"), "--n-samples",
                          "4000", "--n-features", "3", "--max-k", "3", "--holders", "ram,memmap",
                          "--json", str(result)], cwd=ROOT, env=ENV, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads(result.read_text())
    for holder in ("ram", "memmap"):
        assert res[holder]["bic_agree"]
        assert res[holder]["sweep_passes"] < res[holder]["separate_passes"]


def test_streaming_script_runs_on_a_memory_map(tmp_path):
    pytest.importorskip("matplotlib")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "streaming.py"), "--rows",
                          "20000", "--batch-size", "2000", "--runs", "1", "--memmap",
                          str(tmp_path), "--curve", str(tmp_path / "c.png")],
                         cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "(memory map)" in out.stdout and "2 passes" in out.stdout
    assert (tmp_path / "c.png").stat().st_size > 0


def test_hmm_compare_worker_runs_and_both_libraries_agree(capsys):
    """hmm_compare.py's worker (run in this process, without the child
    processes of its table): both libraries fit its problem from the same
    start to the same log-likelihood."""
    pytest.importorskip("hmmlearn")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import hmm_compare
    finally:
        sys.path.pop(0)
    X, lengths = hmm_compare.make_sequences(3, 40, 2, 3)
    assert X.shape == (120, 2) and list(lengths) == [40, 40, 40]
    results = []
    for lib in ("fastem", "hmmlearn"):
        hmm_compare.main(["--worker", lib, "--covariance", "full", "--implementation", "log",
                          "--sequences", "3", "--steps", "40", "--features", "2",
                          "--states", "3", "--iters", "2"])
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    for result in results:
        assert result["seconds"][0] > 0 and result["peak"] >= 0
    assert results[0]["log_prob"] == pytest.approx(results[1]["log_prob"], rel=1e-9)


def test_float32_reach_script_measures_the_three_runs():
    """benchmarks/float32_reach.py (the ill-conditioned float32 problem of
    #23): the default rule keeps the passes in float64, the forced run
    computes in float32, and both stay near the float64 fit."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "float32_reach.py"),
                          "--n", "20000", "--iters", "2", "--runs", "1"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split("|") for line in out.stdout.splitlines() if line.startswith("| float")]
    assert [r[4].strip() for r in rows] == ["no", "no", "yes (forced)"]
    assert all(float(r[5]) < 1e-6 for r in rows)  # the bound, relative to float64's
    assert "Per row" in out.stdout


def test_imputation_table_runs():
    pytest.importorskip("sklearn")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "imputation.py"), "--seeds",
                          "1", "--fractions", "0.2", "--data", "iris"], cwd=ROOT,
                         env=ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| iris")]
    assert len(rows) == 1
    errors = [float(c.strip(" *")) for c in rows[0].split("|")[3:-1]]
    assert len(errors) == 5 and all(0 < e < 2 for e in errors)
    # the column mean is the baseline every model-based imputer should beat here
    assert min(errors[:2]) < errors[-1]
