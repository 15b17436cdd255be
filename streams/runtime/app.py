"""The worker's faust app: broker credentials, the tuned app, its raw-bytes topics, and
the broker watchdog."""

from __future__ import annotations

import logging
import os
from typing import Any

import faust

from streams.core.settings import TocsinSettings
from streams.core.topics import topic_name
from streams.runtime.faust_tuning import TunedApp
from streams.runtime.metrics import TocsinMetrics
from streams.runtime.monitor import NoopMonitor

log = logging.getLogger("tocsin.worker")


def credentials(settings: TocsinSettings) -> Any:
    ctx = settings.ssl_context()
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
            ssl_context=ctx, mechanism=settings.sasl_mechanism,
        )
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None


def make_app(settings: TocsinSettings) -> TunedApp:
    s = settings
    extra: dict[str, Any] = {"Monitor": NoopMonitor} if s.noop_monitor else {}
    return TunedApp(
        s.app_id,
        fetch_max_wait_ms=s.fetch_max_wait_ms,
        batch_drain=s.batch_drain,
        **extra,
        broker=s.faust_broker,
        broker_credentials=credentials(s),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=s.partitions,
        topic_replication_factor=s.replication_factor,
        broker_session_timeout=s.session_timeout_s,
        broker_rebalance_timeout=s.rebalance_timeout_s,
        broker_heartbeat_interval=s.heartbeat_interval_s,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        web_enabled=s.web_enabled,
        web_port=s.web_port,
        datadir=str(s.data_dir),
        producer_linger=0.005,
        own_commits=False,  # offsets are committed with the checkpoints only
    )


def make_topic(app: faust.App, settings: TocsinSettings, base: str) -> Any:
    """Topic ``base`` (with the settings' prefix) of raw bytes keys and values."""
    return app.topic(topic_name(settings, base), key_type=bytes, value_type=bytes,
                     value_serializer="raw", key_serializer="raw",
                     partitions=settings.partitions)


async def watch_broker(settings: TocsinSettings, metrics: TocsinMetrics) -> None:
    """Report the broker's reachability; exit when it has been gone too long (no broker:
    nothing left to flush or commit)."""
    from streams.runtime.watchdog import EXIT_BROKER_UNAVAILABLE, BrokerWatchdog

    def gone(exc: Exception) -> None:
        log.critical("%s: %s", type(exc).__name__, exc)
        logging.shutdown()
        os._exit(EXIT_BROKER_UNAVAILABLE)

    def checked(ok: bool, down: float) -> None:
        metrics.broker_reachable.set(1 if ok else 0)

    await BrokerWatchdog(settings, gone, checked).run()
