"""Benchmarks of the training path: ``python -m benchmarks.run --out BENCHMARKS.md``.

Every figure is a ratio of contenders measured side by side in one process, interleaved
(A, B, A, B, ...), so that it holds on a shared, noisy machine; absolute timings are shown
for orientation only. See benchmarks/run.py for the list of benchmarks.
"""
