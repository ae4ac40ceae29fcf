"""Benchmarks: each prints figures measured in one run (ratios, percentiles). Never run in CI."""
