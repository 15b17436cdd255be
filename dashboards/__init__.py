"""Grafana dashboards as code (grafana-foundation-sdk); generated JSON in dashboards/json/."""
