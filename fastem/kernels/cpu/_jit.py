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

What a kernel is compiled with and without (measured on AMD EPYC Zen 1,
family 23 model 1, the default fit + ``predict`` + ``score_samples`` from an
empty cache, whole process, medians of 5 in alternating runs):

* A helper is compiled without Numba's two entry points from outside
  compiled code (``no_cpython_wrapper``, ``no_cfunc_wrapper``), and a
  driver without the C one: those wrappers unbox every array argument and
  are lowered, optimised and turned into machine code like the kernel
  itself, for nothing, since a helper is only ever inlined and a driver only
  called from Python. 0.94x the CPU time. A helper therefore cannot be
  called from Python (:class:`_HelperDispatcher` says so instead of jumping
  to a null entry point); tests and benchmarks wrap one in
  :func:`from_python`.
* Inlining the helpers at Numba-IR level (``inline="always"``) instead of
  by LLVM lost: the IR is copied into, typed and lowered in every caller,
  and the accumulate driver alone then compiled for 16 s (2.2 s now).
"""

from numba import njit
from numba.core.compiler import Compiler
from numba.core.registry import CPUDispatcher

from ...config import FASTMATH

#: Options shared by every CPU kernel (``config.FASTMATH`` says why those flags).
OPTIONS = {"fastmath": FASTMATH, "nogil": True, "error_model": "numpy"}


class _NoAliasCompiler(Compiler):
    """Numba's default pipeline, with every pointer argument ``noalias``
    (the flag that parfor lowering sets on a ``prange`` body)."""

    def __init__(self, typingctx, targetctx, library, args, return_type, flags, locals):
        flags.noalias = True
        super().__init__(typingctx, targetctx, library, args, return_type, flags, locals)


class _HelperDispatcher(CPUDispatcher):
    """The dispatcher of a :func:`helper`: compiled code calls it, Python cannot
    (it has no Python entry point)."""

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self.py_func.__qualname__} is a kernel helper: it runs inlined in "
                        "compiled code only, not from Python")


def driver(fn):
    """Compile ``fn`` as a cached, ``nogil``, ``noalias`` entry point."""
    return njit(cache=True, pipeline_class=_NoAliasCompiler, no_cfunc_wrapper=True, **OPTIONS)(fn)


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
    options.update(nopython=True, forceinline=True, no_cpython_wrapper=True,
                   no_cfunc_wrapper=True)
    return _HelperDispatcher(py_func=fn, locals={}, targetoptions=options,
                             pipeline_class=_NoAliasCompiler)


def from_python(helper_fn):
    """A Python entry point to the helper ``helper_fn`` (compiled on first
    call, not cached), for the tests and benchmarks that call one block by
    block. The kernels never use it."""
    return njit(cache=False, **OPTIONS)(lambda *args: helper_fn(*args))


def stack_helper(fn):
    """A helper inlined at Numba-IR level: for the few that return stack
    buffers (``_stack.stack_panel``), whose memory must be the caller's frame."""
    return njit(cache=False, inline="always", **OPTIONS)(fn)
