"""scikit-learn's own GaussianMixture tests, run against fastem.

    python benchmarks/sklearn_suite.py              # prints the summary
    python benchmarks/sklearn_suite.py --json out.json

Takes the installed scikit-learn's ``sklearn/mixture/tests/test_gaussian_mixture.py``,
switches its one import of ``GaussianMixture`` to ``fastem.GaussianMixture``
(nothing else changes), and runs it with pytest in a temporary folder, with
scikit-learn's own ``conftest.py`` fixtures. Reported: the test cases that ran
(array-API cases skip unless ``SCIPY_ARRAY_API=1``, as in a default
scikit-learn install), how many passed, and every failure with the reason
fastem differs, or ``UNEXPECTED``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ORIGINAL_IMPORT = "from sklearn.mixture import GaussianMixture\n"
SWITCHED_IMPORT = "from fastem import GaussianMixture\n"

#: Test functions that reach into scikit-learn's private implementation; the
#: issue that asked for this run allows them to fail.
PRIVATE_API = {
    "test_gaussian_mixture_precisions_init": "calls the private GaussianMixture._set_parameters",
    "test_gaussian_mixture_all_init_does_not_estimate_gaussian_parameters":
        "mocks sklearn.mixture._gaussian_mixture._estimate_gaussian_parameters",
}

#: Deliberate differences, each with the reason.
KNOWN_DIFFERENCES = {
    "test_check_weights":
        "expects scikit-learn's range message, which prints the minimum as 'max value' and "
        "the maximum as 'min value'; fastem labels them correctly (shape and sum messages match)",
    "test_gaussian_mixture_setting_best_params":
        "with reg_covar=0 one M-step collapses a spherical component onto a point: fastem's "
        "centred statistics give variance exactly 0 and raise the ill-defined-covariance "
        "error; scikit-learn's raw moments leave round-off variances (3.6e-16 and 9.5e-16 in scikit-learn 1.9.1) and continue",
}


def test_file() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-learn is not installed: pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "mixture" / "tests" / "test_gaussian_mixture.py"
    if not path.exists():
        raise SystemExit(f"{path} is missing (this scikit-learn was installed without its tests)")
    return path


def run(timeout=600) -> dict:
    """Run the switched test file; return the summary as a dict."""
    import sklearn

    source = test_file().read_text()
    if source.count(ORIGINAL_IMPORT) != 1:
        raise RuntimeError(f"expected exactly one line {ORIGINAL_IMPORT.strip()!r} in "
                           f"{test_file()}; the file changed shape")
    with tempfile.TemporaryDirectory(prefix="fastem-sklearn-suite-") as tmp:
        tmp = Path(tmp)
        (tmp / "test_gaussian_mixture_fastem.py").write_text(
            source.replace(ORIGINAL_IMPORT, SWITCHED_IMPORT))
        (tmp / "conftest.py").write_text("from sklearn.conftest import *  # noqa: F401,F403\n")
        report = tmp / "report.xml"
        env = {k: v for k, v in os.environ.items() if k != "SCIPY_ARRAY_API"}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
             f"--junitxml={report}", "test_gaussian_mixture_fastem.py"],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        if not report.exists():
            raise RuntimeError("pytest wrote no report:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
        cases = ET.parse(report).getroot().iter("testcase")
        results = []
        for case in cases:
            name = case.get("name")
            function = name.split("[")[0]
            if case.find("skipped") is not None:
                status = "skipped"
            elif case.find("failure") is not None or case.find("error") is not None:
                status = "failed"
            else:
                status = "passed"
            results.append({"name": name, "function": function, "status": status})
    ran = [r for r in results if r["status"] != "skipped"]
    failed = [r for r in ran if r["status"] == "failed"]
    for r in failed:
        reason = PRIVATE_API.get(r["function"]) or KNOWN_DIFFERENCES.get(r["function"])
        r["reason"] = reason or "UNEXPECTED"
        r["kind"] = ("private API" if r["function"] in PRIVATE_API else
                     "known difference" if reason else "unexpected")
    public = [r for r in ran if r["function"] not in PRIVATE_API]
    return {
        "sklearn_version": sklearn.__version__,
        "cases_run": len(ran),
        "passed": len(ran) - len(failed),
        "skipped": len(results) - len(ran),
        "public_cases_run": len(public),
        "public_passed": sum(r["status"] == "passed" for r in public),
        "failures": failed,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args(argv)
    summary = run()
    print(f"scikit-learn {summary['sklearn_version']}: test_gaussian_mixture.py against "
          f"fastem.GaussianMixture")
    print(f"  {summary['passed']} of {summary['cases_run']} test cases pass "
          f"({summary['skipped']} array-API cases skipped)")
    print(f"  {summary['public_passed']} of {summary['public_cases_run']} cases that use only "
          "the public API pass")
    for r in summary["failures"]:
        print(f"  FAILED {r['name']}: [{r['kind']}] {r['reason']}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 1 if any(r["kind"] == "unexpected" for r in summary["failures"]) else 0


if __name__ == "__main__":
    sys.exit(main())
