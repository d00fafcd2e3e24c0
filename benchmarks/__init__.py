"""fastem benchmarks: the asv suite (``bench_*.py``), ``compare.py`` and
``out_of_core.py`` scripts, and pytest-benchmark micro-benchmarks (``micro/``)."""
