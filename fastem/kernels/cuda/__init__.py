"""numba.cuda kernels, twins of the CPU kernels."""
