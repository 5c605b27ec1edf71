"""asv benchmark suite of maxplus (run it with ``python benchmarks/run_asv.py``)."""
