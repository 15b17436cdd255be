"""Scoring rules of public benchmarks (NAB)."""
