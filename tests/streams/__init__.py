"""Tests of the streams package: ingest, pipeline, runtime, publishing, tools."""
