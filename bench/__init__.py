"""Benchmarks of Shomei.  Each ``bench/bench_*.py`` module has ``run(workdir) -> list[Figure]``;
``python -m bench [NAME ...]`` runs them and writes ``bench/results.json``."""
