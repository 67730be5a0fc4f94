"""Benchmarks: ``python -m benchmarks [NAME ...]`` runs ``bench_*.py`` modules.

Each module has ``main() -> list[Figure]`` and prints each figure as a ratio against a
baseline measured in the same run (these machines are shared and noisy).
"""
