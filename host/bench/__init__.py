"""Benchmarks the host runs: ``host.bench.engine`` is ``kindling bench engine``.

Nothing is imported here, so ``python -m host.bench.engine`` (how the benchmark starts its
runner processes) loads that module only once.
"""
