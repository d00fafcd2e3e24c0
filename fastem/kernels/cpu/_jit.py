"""The decorators of every CPU kernel: one place for how a kernel is compiled.

* :func:`driver` compiles an entry point that Python calls: cached on disk,
  ``nogil`` (the threads of :mod:`._parts` run drivers side by side), and
  with every array argument marked ``noalias``, the promise that a driver's
  arrays never overlap (its outputs are fresh arrays, its inputs read only).
* :func:`helper` compiles a per-block function that drivers call: never
  cached, and inlined by LLVM into every driver that calls it.

Why this split (measured on Zen 5, the default fit + ``predict`` +
``score_samples`` from an empty cache, one process):

* The drivers used to be ``prange`` loops, and the helpers were inlined at
  Numba-IR level (``inline="always"``). That compiled for 20 CPU-seconds:
  Numba's IR inlining, its parfor passes and the parfor lowering, which
  compiles the outlined loop body again with everything inlined into it,
  took most of it. Plain drivers called from Python threads
  (:func:`~._parts.run_parts`) and helpers inlined by LLVM instead compile
  in a fraction of that.
* A ``prange`` body gets ``noalias`` arguments from Numba's parfor lowering;
  without them LLVM must assume that, say, ``second`` may overlap ``xt`` and
  reloads values the kernels keep in registers: a plain driver ran 1.4x
  slower until :func:`driver` gave it the same promise.
* A helper loaded from Numba's cache is object code and cannot be inlined,
  while one compiled in this process can: the same driver would then be
  compiled differently, with different last bits (``reassoc`` lets LLVM
  vectorise reductions differently), depending on the cache's state. Helpers
  are therefore never cached; a driver loaded from the cache carries its
  inlined helpers with it, so the cache's state no longer changes any bit.
"""

from numba import njit
from numba.core.compiler import Compiler

from ...config import FASTMATH

#: Options shared by every CPU kernel (``config.FASTMATH`` says why those flags).
OPTIONS = {"fastmath": FASTMATH, "nogil": True, "error_model": "numpy"}


class _NoAliasCompiler(Compiler):
    """Numba's default pipeline, with every pointer argument ``noalias``
    (the flag that parfor lowering sets on a ``prange`` body)."""

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags.noalias = True
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


def driver(fn):
    """Compile ``fn`` as a cached, ``nogil``, ``noalias`` entry point."""
    return njit(cache=True, pipeline_class=_NoAliasCompiler, **OPTIONS)(fn)


def helper(fn=None, *, ordered=False):
    """Compile ``fn`` as an uncached helper that LLVM inlines into its callers.

    ``ordered=True`` leaves out ``reassoc``, for arithmetic whose order is
    its accuracy (the Cody-Waite range reduction of ``fast_exp``): fast-math
    flags are per instruction, so they stay the helper's own inside any caller.
    """
    if fn is None:
        return lambda f: helper(f, ordered=ordered)
    options = dict(OPTIONS)
    if ordered:
        options["fastmath"] = OPTIONS["fastmath"] - {"reassoc"}
    return njit(cache=False, forceinline=True, pipeline_class=_NoAliasCompiler, **options)(fn)


def stack_helper(fn):
    """A helper inlined at Numba-IR level: for the few that return stack
    buffers (``_stack.stack_panel``), whose memory must be the caller's frame."""
    return njit(cache=False, inline="always", **OPTIONS)(fn)
