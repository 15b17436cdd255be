"""Ingest: decode, validate, de-duplicate, dead-letter, protect personal data."""
