"""``tocsin bench``: throughput, latency and memory figures (not on the worker's import path)."""
