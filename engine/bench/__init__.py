"""Benchmarks run by ``python -m engine bench ...``: accuracy against references, and speed."""
