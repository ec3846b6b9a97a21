"""Benchmarks: `python -m bench` (make bench) measures the pipeline against references,
side by side in one run."""
