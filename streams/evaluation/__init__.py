"""Scoring detection: replay scoring, baselines, NAB and the world zoo.

Not on the worker's import path."""
