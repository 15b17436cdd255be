"""Real Prometheus and Alertmanager servers for tests: the servers live in
``streams.tools.services`` (``tocsin bench --live`` starts Alertmanager too); here, the
names the tests import."""

from streams.tools.broker import free_port
from streams.tools.services import (
    ServiceUnavailable,
    alertmanager,
    ensure_binary,
    prometheus,
    running,
    wait_http,
)

__all__ = ["ServiceUnavailable", "alertmanager", "ensure_binary", "free_port", "prometheus",
           "running", "wait_http"]
