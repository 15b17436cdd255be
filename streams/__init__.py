"""Tocsin stream side: wire schemas, topics, faust agents, sinks and the CLI."""

__version__ = "0.1.0"
