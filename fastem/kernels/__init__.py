"""Compute kernels: ``cpu`` (Numba) and, later, ``cuda`` (numba.cuda)."""
