"""Outputs of warnings: CAP, Alertmanager, Grafana annotations, sharing grants."""
