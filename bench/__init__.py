"""Benchmarks that measure Venta beside its peers in the same run and print the ratios (see bench/README.md).

Each `bench/<name>.py` runs alone (`.venv/bin/python bench/<name>.py`, `--short` for a quick check); `python -m bench`
runs them all and writes docs/performance.md. Nothing in services/ may import this package.
"""
