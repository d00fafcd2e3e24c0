"""First-call compile time of the CUDA kernels, measured on the CPU.

A GPU fit compiles each kernel it launches on its first use: Numba types the
kernel and generates its PTX on the CPU (then the driver assembles it for
the card). This script times ``cuda.compile_ptx`` of every kernel for sm_90,
for float64 and float32 rows, in one process, so it needs NVVM (numba-cuda's
``cu13`` extra) but no GPU::

    python benchmarks/cuda_compile.py
"""

from __future__ import annotations

import time

try:
    from .common import cpu_info
except ImportError:  # run as a script
    from common import cpu_info


def main():
    from numba import cuda
    from numba.cuda import dispatcher

    from fastem.kernels.cuda import gaussian, hmm, missing

    if not cuda.is_available() and hasattr(dispatcher, "get_current_device"):
        class _Hopper:  # compile_ptx asks the current device for device functions
            compute_capability = (9, 0)
        dispatcher.get_current_device = lambda: _Hopper()
    info = cpu_info()
    print(f"CPU: {info['cpu']} ({info['cpu_simd']}); PTX for sm_90, seconds per kernel")
    total = 0.0
    for x_dtype in ("float64", "float32"):
        for module in (gaussian, missing):  # missing: the incomplete-data (NaN) kernels
            for name in module.KERNELS:
                t0 = time.perf_counter()
                cuda.compile_ptx(getattr(module, name).py_func, module.signature(name, x_dtype),
                                 cc=(9, 0))
                seconds = time.perf_counter() - t0
                total += seconds
                label = name if module is gaussian else f"missing.{name}"
                print(f"  {x_dtype} rows  {label:<18} {seconds:6.2f}")
    for name in hmm.KERNELS:  # no rows: the emission log-densities, float64
        t0 = time.perf_counter()
        cuda.compile_ptx(getattr(hmm, name).py_func, hmm.signature(name), cc=(9, 0))
        seconds = time.perf_counter() - t0
        total += seconds
        print(f"  HMM           {name:<18} {seconds:6.2f}")
    print(f"  total {total:.2f}")


if __name__ == "__main__":
    main()
