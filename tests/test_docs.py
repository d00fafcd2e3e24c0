"""The documentation, checked like code (#25).

* numpydoc's validation of every public name: a docstring with a summary,
  every parameter described, a Returns section and Examples;
* every Examples section runs (doctest) and prints what it shows;
* the site builds with warnings as errors, and the examples gallery runs.
"""

import doctest
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastem
import fastem.plot

ROOT = Path(__file__).resolve().parents[1]

#: The public API, as docs/api.rst lists it (the test below keeps the two equal).
ESTIMATORS = ["GaussianMixture", "BayesianGaussianMixture", "GaussianMixtureIC",
              "GaussianMixtureImputer", "PPCA", "VAE",
              "GaussianHMM"]
FUNCTIONS = ["fastem.load", "fastem.warmup", "fastem.plot.plot_lower_bound",
             "fastem.plot.plot_mixture", "fastem.plot.plot_criterion"]

#: numpydoc checks every public name must pass: a docstring (GL08) with a
#: one-line summary (SS01), every parameter documented (PR01), none unknown
#: (PR02), each with a description (PR07), a Returns section (RT01) and
#: Examples (EX01). Style-only checks (line breaks in summaries, "See Also",
#: capitalisation) are left to review.
CHECKS = {"GL08", "SS01", "PR01", "PR02", "PR07", "RT01", "EX01"}


def _public_names():
    names = []
    for cls_name in ESTIMATORS:
        cls = getattr(fastem, cls_name)
        names.append(f"fastem.{cls_name}")
        for name, value in inspect.getmembers(cls):
            if name.startswith("_") or not (callable(value) or isinstance(value, property)):
                continue
            names.append(f"fastem.{cls_name}.{name}")
    return names + FUNCTIONS


PUBLIC = _public_names()


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_passes_numpydoc_validation(name):
    validate = pytest.importorskip("numpydoc.validate")
    errors = [f"{code}: {message}" for code, message in validate.validate(name)["errors"]
              if code in CHECKS]
    # a property documents a value, not a call: it has no Returns or Examples
    if isinstance(inspect.getattr_static(*_owner_and_name(name)), property):
        errors = [e for e in errors if e[:4] not in ("RT01", "EX01")]
    assert not errors, f"{name}:\n" + "\n".join(errors)


def _owner_and_name(name):
    parts = name.split(".")
    owner = fastem
    for part in parts[1:-1]:
        owner = getattr(owner, part)
    return owner, parts[-1]


def _docstring_owners():
    """Every distinct function whose docstring is a public name's."""
    seen = {}
    for name in PUBLIC:
        owner, attr = _owner_and_name(name)
        obj = inspect.getattr_static(owner, attr)
        obj = getattr(obj, "__func__", obj)
        obj = obj.fget if isinstance(obj, property) else obj
        if obj.__doc__ and ">>>" in obj.__doc__:
            seen.setdefault(id(obj), (name, obj))
    return list(seen.values())


@pytest.mark.parametrize("name,obj", _docstring_owners(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_example_runs_and_shows_what_it_prints(name, obj):
    if "VAE" in name:
        pytest.importorskip("torch")
    if "plot" in name:
        pytest.importorskip("matplotlib")
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(obj, name, globs={}):
        runner.run(test, out=lambda text: pytest.fail(f"{name}:\n{text}"))
    assert runner.summarize(verbose=False).attempted > 0


def test_api_page_lists_every_public_name():
    api = (ROOT / "docs" / "api.rst").read_text()
    for name in ESTIMATORS + FUNCTIONS:
        assert name.split(".")[-1] in api, name


def test_the_site_builds_without_warnings_and_the_gallery_runs(tmp_path):
    """``sphinx-build -W`` of a copy of docs/ and examples/ (the gallery
    writes its pages into the source folder): every example runs and draws,
    every page and API stub is produced, and no reference dangles."""
    pytest.importorskip("sphinx")
    pytest.importorskip("sphinx_gallery")
    pytest.importorskip("matplotlib")
    import shutil

    for folder in ("docs", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("_build", "auto_examples", "generated",
                                                      "sg_execution_times.rst"))
    out = tmp_path / "html"
    env = dict(os.environ, MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          str(tmp_path / "docs"), str(out)], capture_output=True, text=True,
                         env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    examples = sorted(p.stem for p in (ROOT / "examples").glob("plot_*.py"))
    assert len(examples) >= 9
    for name in examples:
        page = (out / "auto_examples" / f"{name}.html").read_text()
        assert "sphx-glr-single-img" in page or "sphx-glr-multi-img" in page, f"{name} drew nothing"
        assert "Traceback" not in page, name
    for page in ["index", "getting_started", "api", "benchmarks", "user_guide/theory",
                 "user_guide/model_files", "contributing/how_it_works",
                 "generated/fastem.GaussianMixture", "generated/fastem.plot.plot_mixture"]:
        assert (out / f"{page}.html").exists(), page
