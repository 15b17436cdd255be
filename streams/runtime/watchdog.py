"""Fail fast when the broker is gone for too long.

faust and aiokafka retry a lost broker forever; an operator would rather see the worker
exit with a clear reason so the orchestrator restarts it (and alerts on the restarts). The
watchdog asks the cluster for its metadata every few seconds (a Kafka request, so a broker
that accepts connections but does not answer — paused, overloaded — counts as gone) and
calls ``on_gone`` with a :class:`BrokerUnavailableError` once no answer has come for
``broker_unavailable_limit_s``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from streams.core.errors import EXIT_UNAVAILABLE, BrokerUnavailableError
from streams.core.settings import TocsinSettings

log = logging.getLogger("tocsin.watchdog")

#: exit status of a worker whose broker stayed unreachable (sysexits' EX_UNAVAILABLE)
EXIT_BROKER_UNAVAILABLE = EXIT_UNAVAILABLE


class BrokerWatchdog:
    def __init__(self, settings: TocsinSettings,
                 on_gone: Callable[[BrokerUnavailableError], None],
                 on_check: Callable[[bool, float], None] | None = None) -> None:
        self.settings = settings
        self.limit_s = settings.broker_unavailable_limit_s
        self.interval_s = max(0.5, min(5.0, self.limit_s / 4))
        self.on_gone = on_gone
        self.on_check = on_check  # (reachable, seconds since the last answer)
        self.last_ok = time.monotonic()
        self._client: Any = None

    async def _check(self) -> bool:
        from aiokafka import AIOKafkaClient

        try:
            if self._client is None:
                kw = self.settings.kafka_client_kwargs()
                client = AIOKafkaClient(
                    bootstrap_servers=kw.pop("bootstrap_servers"),
                    request_timeout_ms=int(self.interval_s * 1000),
                    **{k: v for k, v in kw.items() if k in (
                        "security_protocol", "ssl_context", "sasl_mechanism",
                        "sasl_plain_username", "sasl_plain_password")})
                await asyncio.wait_for(client.bootstrap(), self.interval_s)
                self._client = client
            await asyncio.wait_for(self._client.fetch_all_metadata(), self.interval_s)
            return True
        except Exception as exc:  # any failure to get an answer is "no answer"
            log.debug("broker check failed: %r", exc)
            if self._client is not None:
                client, self._client = self._client, None
                with contextlib.suppress(Exception):  # already broken
                    await asyncio.wait_for(client.close(), 1.0)
            return False

    async def run(self) -> None:
        """Check until cancelled; call ``on_gone`` once when the limit is passed."""
        while True:
            ok = await self._check()
            now = time.monotonic()
            if ok:
                if now - self.last_ok > 2 * self.interval_s:
                    log.warning("broker reachable again after %.0f s", now - self.last_ok)
                self.last_ok = now
            down = now - self.last_ok
            if self.on_check is not None:
                self.on_check(ok, down)
            if not ok and down > self.limit_s:
                servers = ", ".join(self.settings.bootstrap_servers)
                self.on_gone(BrokerUnavailableError(
                    f"no answer from the Kafka broker ({servers}) for {down:.0f} s, longer "
                    f"than TOCSIN_BROKER_UNAVAILABLE_LIMIT_S={self.limit_s:g}; exiting so "
                    "the orchestrator restarts this worker. Check that the brokers are up "
                    "and reachable from here (TOCSIN_BROKER, network policy, TLS/SASL "
                    "settings)."))
                return
            if not ok:
                log.warning("no answer from the broker for %.0f s (limit %g s)", down,
                            self.limit_s)
            await asyncio.sleep(self.interval_s)
