"""Tunables of fastem, in one place.

Changing a value here changes the row partition of the data and therefore the
order of floating-point summation: results stay deterministic for a given
value, but move by round-off when it changes.

The Numba kernels read the block sizes as compile-time constants, and Numba's
on-disk cache does not notice when a constant imported from here changes:
delete ``fastem/kernels/**/__pycache__`` after editing one.
"""

# --- Fitting -------------------------------------------------------------------

#: A component whose mass is below this fraction of the total weight has lost
#: its points; EM re-seeds it instead of letting it collapse to a degenerate Gaussian.
EMPTY_COMPONENT_MASS = 1e-13

#: Relative drop of a fit's bound, beyond round-off, that triggers a warning.
MONOTONICITY_SLACK = 1e-9
#: The same slack for passes computed in float32 (float32 rounds each row's
#: log-density to ~1e-7 relative; measured drops near convergence stay below 1e-7).
FLOAT32_BOUND_ROUND_OFF = 1e-6
#: A float32 pass runs in float64 when the model magnifies float32's rounding
#: of a row by more than this (``fastem._precision.float32_amplification``:
#: at 300, a row is placed to 2e-5 of a component's scale). Clusters 100
#: standard deviations apart stay in float32; a component collapsing onto a
#: few rows (standard deviation ~1e-3 of the data's) does not: there a
#: float32 fit's bound dropped by 3e-3 relative (n=20, d=3, k=3, full).
FLOAT32_MAX_AMPLIFICATION = 300.0

# --- Initialisation (k-means; row sampling) -------------------------------------

#: k-means++ seeding + Lloyd run this many times on the sample; the lowest
#: inertia wins. (scikit-learn's GMM runs one; a few cheap runs on the sample
#: make the default initialisation more reliable at negligible cost.)
KMEANS_RESTARTS = 3
#: Rows on which seeding and the first Lloyd iterations run (at least this
#: many, and 50 per component).
KMEANS_SAMPLE_ROWS = 20_000
#: Lloyd iterations on the sample, and then on all rows (scikit-learn: 300 on all).
KMEANS_SAMPLE_ITER = 300
KMEANS_FULL_PASSES = 10
#: Relative tolerance on the centre shift, scikit-learn's default ``tol``.
KMEANS_TOL = 1e-4
#: Up to this many rows, row sampling uses ``RandomState.choice`` (the same
#: stream as scikit-learn); it permutes all n rows, so beyond this it is
#: replaced by rejection sampling with O(size) memory.
PERMUTATION_MAX_ROWS = 10_000_000

# --- Passes ----------------------------------------------------------------------

#: Rows per inner block. A block of points is transposed into a
#: ``(n_features, BLOCK_ROWS)`` buffer of the compute dtype so that the
#: innermost loops run over points and vectorise. The statistics reduce over
#: a block's points, once per entry per block, so a longer block spends less
#: on those reductions: 128 rather than 64 made the float32 passes 15-20 %
#: faster per kernel (full statistics 0.122 -> 0.101 s, diag 0.175 -> 0.135
#: s per 1M points on Zen 4) and the float64 diag statistics 12 % faster; the
#: log-densities keep 64-point float64 panels inside a block
#: (``kernels/cpu/_stack.panel_rows``). A multiple of 128, the float32 panel.
#: The diag statistics sum two consecutive blocks of a part per call (the
#: E-step stays block by block; ``kernels/cpu/gaussian.block_stats_diag``):
#: 256 rows throughout were slower, 128 + 128 faster.
BLOCK_ROWS = 128

#: Upper bound on the number of row parts whose partial statistics are kept
#: separately before the fixed-order reduction. The partition depends only on
#: the data shape, never on the thread count, which makes fits bit-identical
#: for any ``NUMBA_NUM_THREADS``.
MAX_PARTS = 256

#: Memory budget, in bytes, for the per-part partial statistics
#: (``n_parts * n_components * n_features**2 * 8``). Large models get fewer,
#: longer parts.
PARTIAL_STATS_BYTES = 64 * 2**20

#: Rows per chunk for the work the Python drivers do chunk by chunk
#: (predict/score outputs, initialisation from responsibilities, input checks,
#: the windows of a shared incomplete-data pass and of float32 rows widened).
CHUNK_ROWS = 65536

#: Floating-point flags of every CPU kernel (``kernels/cpu/_jit.py`` applies
#: them). ``reassoc`` lets LLVM reassociate the per-block reductions so they
#: vectorise (the code path is fixed, so results stay deterministic); the set
#: deliberately excludes ``nnan`` and ``ninf``, since log-sum-exp relies on
#: -inf for components with zero weight.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# --- Hidden Markov models ----------------------------------------------------------

#: Steps per part of a GaussianHMM pass: consecutive sequences are grouped
#: into parts of at least this many steps, each run whole by one thread (its
#: statistics summed in sequence order, parts in their order after).
HMM_PART_STEPS = 16384
#: A sequence of at least this many steps runs alone: its emission densities
#: and statistics in parallel over row parts, its recursion on one thread,
#: with O(steps x states) memory for the emissions and posteriors.
HMM_LONG_SEQUENCE = 131072

# --- CUDA backend -----------------------------------------------------------

#: Threads per CUDA block: the tile kernels' (halved until the block's shared
#: memory fits) and the elementwise kernels' (the reduction of row parts, the
#: finiteness check). The kernels size their static shared memory by its value
#: when they are imported: it may be lowered later, not raised.
CUDA_THREADS = 128
#: Dynamic shared memory per block that the kernels may use.
CUDA_SHARED_BYTES = 48 * 1024
#: Upper bound on CUDA blocks (row parts) per pass, and the memory budget of
#: their partial statistics; both fix the partition from the shape alone.
CUDA_MAX_PARTS = 4096
CUDA_PARTIAL_STATS_BYTES = 256 * 2**20
#: X stays on the GPU when it needs at most this many bytes (None: half of the
#: free GPU memory); otherwise it is streamed in chunks of CUDA_STREAM_BYTES.
CUDA_MAX_RESIDENT_BYTES = None
CUDA_STREAM_BYTES = 256 * 2**20

# --- Dask backend -------------------------------------------------------------

#: Per-chunk arguments (random initial responsibilities, k-means++ distances)
#: that the client holds at once before computing a batch of init tasks.
DASK_BATCH_BYTES = 256 * 2**20
