"""Fusion: anomalies of different departments into incidents (correlation, scenario
templates, feedback, the city-wide view, event-time reordering)."""
