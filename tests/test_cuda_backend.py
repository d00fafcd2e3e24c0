"""CUDA backend checks that need no GPU: the simulator suite (in its own
process), PTX compilation for sm_90, and the error without CUDA."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastem import GaussianHMM, GaussianMixture

HERE = Path(__file__).parent


def _cuda_available():
    try:
        from numba import cuda
        return cuda.is_available()
    except Exception:
        return False


def _cuda_importable():
    try:
        import numba.cuda  # noqa: F401
        return True
    except ImportError:
        return False


def test_kernels_under_cuda_simulator():
    """tests/cuda runs with NUMBA_ENABLE_CUDASIM=1, set before numba is imported."""
    pytest.importorskip("numba.cuda")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(HERE / "cuda")], env=env, capture_output=True, text=True,
                         cwd=HERE.parent)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout.splitlines()[-1]


@pytest.mark.skipif(_cuda_available(), reason="a GPU is present")
def test_cuda_backend_without_gpu_raises_clear_error():
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=r"CUDA is not available.*pip install 'fastem\[cuda\]'"):
        GaussianMixture(2, backend="cuda").fit(X)
    with pytest.raises(ValueError, match=r"CUDA is not available.*pip install 'fastem\[cuda\]'"):
        GaussianHMM(2, backend="cuda").fit(X)


def test_gaussian_hmm_refuses_dask_arrays_on_cuda():
    da = pytest.importorskip("dask.array")
    X = da.from_array(np.random.default_rng(0).normal(size=(20, 2)), chunks=10)
    with pytest.raises(ValueError, match="dask arrays run the CPU kernels"):
        GaussianHMM(2, backend="cuda").fit(X)


def _ptx_cases():
    """Every CUDA kernel with the argument types the backends launch it with."""
    from fastem.kernels.cuda import gaussian, hmm, missing

    cases = [(module, name, dtype) for module in (gaussian, missing) for name in module.KERNELS
             for dtype in ("float32", "float64")]
    return cases + [(hmm, name, None) for name in hmm.KERNELS]


@pytest.mark.parametrize("module, name, dtype", _ptx_cases() if _cuda_importable() else [],
                         ids=lambda v: getattr(v, "__name__", v))
def test_kernels_compile_to_ptx_for_sm90(module, name, dtype, monkeypatch):
    """Compile every CUDA kernel for Hopper without a device (needs NVVM/NVRTC)."""
    cuda = pytest.importorskip("numba.cuda")

    # numba-cuda compiles device functions for the *current* device even inside
    # compile_ptx; without a GPU, tell it the device is sm_90.
    dispatcher = pytest.importorskip("numba.cuda.dispatcher")
    if not _cuda_available() and hasattr(dispatcher, "get_current_device"):
        class _Hopper:
            compute_capability = (9, 0)
        monkeypatch.setattr(dispatcher, "get_current_device", lambda: _Hopper())

    sig = module.signature(name, dtype) if dtype else module.signature(name)
    try:
        ptx, _ = cuda.compile_ptx(getattr(module, name).py_func, sig, cc=(9, 0))
    except Exception as exc:  # no NVVM / NVRTC libraries on this machine
        if "NVVM" in str(exc) or "nvrtc" in str(exc).lower() or "libnvvm" in str(exc).lower() \
                or "DynamicLibNotFound" in type(exc).__name__:
            pytest.skip(f"CUDA compiler libraries not available: {exc}")
        raise
    assert ".target sm_90" in ptx
    assert ".entry" in ptx
