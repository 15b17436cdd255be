"""Integration tests: live workers against the real broker, Prometheus and Alertmanager."""
