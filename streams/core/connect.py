"""Connecting to the broker, for every client Tocsin starts: where (logged once), how long
(``TOCSIN_BROKER_UNAVAILABLE_LIMIT_S`` at start-up, the limit a running worker honours)
and the one message when no broker answered (:class:`BrokerUnavailableError`, exit 69).

A *patient* start retries until the limit (a worker or ``topics create`` started before
the broker); an impatient one tries once (a duty officer's ``explain`` or ``feedback``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from streams.core.errors import BrokerUnavailableError

if TYPE_CHECKING:  # this module is imported by the settings, for DEFAULT_BROKER
    from streams.core.settings import TocsinSettings

#: the broker of TOCSIN_BROKER's default (the CLI's --broker help shows it)
DEFAULT_BROKER = "127.0.0.1:9092"
log = logging.getLogger("tocsin.broker")
T = TypeVar("T")
RETRY_S = 0.5
#: the client libraries' loggers, which log every failed connection attempt
CLIENT_LOGGERS = ("aiokafka", "kafka")


def announce(settings: TocsinSettings, patient: bool) -> float:
    """Log where this process connects (once per address); the deadline (monotonic) of a
    patient start."""
    limit = settings.broker_unavailable_limit_s
    _log_once(", ".join(settings.bootstrap_servers), limit if patient else None)
    return time.monotonic() + limit


@functools.cache
def _log_once(servers: str, wait_s: float | None) -> None:
    if wait_s is None:
        log.info("connecting to %s ...", servers)
    else:
        log.info("connecting to %s (waiting up to %g s, TOCSIN_BROKER_UNAVAILABLE_LIMIT_S)",
                 servers, wait_s)


def unreachable(settings: TocsinSettings, exc: BaseException, patient: bool
                ) -> BrokerUnavailableError:
    """The one message of a broker that did not answer."""
    servers = ", ".join(settings.bootstrap_servers)
    within = (f" within TOCSIN_BROKER_UNAVAILABLE_LIMIT_S={settings.broker_unavailable_limit_s:g}"
              " s" if patient else "")
    return BrokerUnavailableError(
        f"no answer from the Kafka broker at {servers}{within} ({type(exc).__name__}); "
        "check that it is up and reachable from here, and that --broker or TOCSIN_BROKER "
        "(and the TLS/SASL settings) name it")


@contextlib.contextmanager
def quiet_clients() -> Iterator[None]:
    """Silence the client libraries' per-attempt connection errors (kept at DEBUG, with
    ``tocsin --debug``): the failure is reported once, by :func:`unreachable`."""
    loggers = [logging.getLogger(n) for n in CLIENT_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        if lg.getEffectiveLevel() > logging.DEBUG:
            lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def connect(make: Callable[[], T], settings: TocsinSettings, patient: bool = True) -> T:
    """``make()`` (a kafka-python client, which connects in its constructor), retried
    until the limit when ``patient``."""
    from kafka.errors import KafkaError

    deadline = announce(settings, patient)
    with quiet_clients():
        while True:
            try:
                return make()
            except (KafkaError, OSError) as e:
                if not patient or time.monotonic() + RETRY_S > deadline:
                    raise unreachable(settings, e, patient) from e
                time.sleep(RETRY_S)


async def start(make: Callable[[], Any], settings: TocsinSettings, patient: bool = True
                ) -> Any:
    """A started aiokafka client made by ``make()``, retried until the limit when
    ``patient``; a client that failed to start is stopped (no 'Unclosed' warning)."""
    from aiokafka.errors import KafkaError

    deadline = announce(settings, patient)
    with quiet_clients():
        while True:
            client = make()
            try:
                await client.start()
                return client
            except (KafkaError, OSError) as e:
                with contextlib.suppress(Exception):
                    await client.stop()
                if not patient or time.monotonic() + RETRY_S > deadline:
                    raise unreachable(settings, e, patient) from e
                await asyncio.sleep(RETRY_S)
