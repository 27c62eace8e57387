"""Benchmarks: workload generation and measured runs; results go to bench/results/<name>.json."""
