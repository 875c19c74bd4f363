"""Benchmarks: pytest-benchmark, outside the default test run.

Run with:  python -m pytest benchmarks --benchmark-only
Each benchmark group times maxlik and its peer on the same data in the same
process; compare the medians within a group.
"""
