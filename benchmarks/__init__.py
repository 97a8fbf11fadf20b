"""govlab benchmarks: ``python -m benchmarks.run`` (see benchmarks/RESULTS.md)."""
