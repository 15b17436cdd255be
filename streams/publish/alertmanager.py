"""Regulators notified through Prometheus Alertmanager (API v2).

A warning becomes one alert per *receiving department*: the departments are derived from the
sources of its evidence (``env`` -> ``ecology``, ``market`` -> ``market``, ``complaint`` ->
``hotline``), never from the free department strings of the records. Labels carry only
bounded, non-personal values (see :data:`LABEL_KEYS`); the explanation text, which may quote
citizens, goes into the ``description`` annotation only. Routing, grouping (by region and
scenario) and inhibition live in ``deploy/alertmanager/alertmanager.yml``.

:class:`AlertmanagerSink` keeps the alerts of the active warnings in memory and posts them
from a background task: at once when something changed, and all of them again every
``resend_s`` as Alertmanager expects from its clients (an alert not re-sent resolves itself
after Alertmanager's ``resolve_timeout``). ``submit`` never blocks and never raises; failed
posts are retried with capped exponential backoff (:mod:`streams.publish.retry`) and logged.
It implements the sink contract (:class:`streams.publish.sink.Sink`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp

from detectors.base import CLOSED_STATUSES
from streams.core.schemas import SEVERITIES as WIRE_SEVERITIES
from streams.core.schemas import Warning
from streams.publish.retry import Backoff, describe, report
from streams.publish.station_alerts import station_alerts

log = logging.getLogger("tocsin.alertmanager")

ALERTNAME: Final = "TocsinWarning"
#: the labels of every alert, exactly
LABEL_KEYS: Final = frozenset(
    {"alertname", "region", "scenario", "severity", "department", "warning_id"})
#: receiving department (label value) of each evidence source
SOURCE_DEPARTMENT: Final[dict[str, str]] = {
    "env": "ecology", "market": "market", "complaint": "hotline"}
#: department of a warning without evidence (routed to the duty officer, the catch-all)
UNASSIGNED: Final = "unassigned"
#: Alertmanager severity labels, most severe first (the wire's CAP severities, lower case)
_SEVERITY_RANK: Final = {s.lower(): i for i, s in enumerate(WIRE_SEVERITIES)}
SEVERITIES: Final = frozenset(_SEVERITY_RANK)
#: label values are restricted to these characters
LABEL_VALUE: Final = re.compile(r"^[a-z0-9_:.-]+$")
LABEL_MAX: Final = 128
DESCRIPTION_MAX: Final = 4000
#: most warnings held (active ones plus resolved ones not yet posted); the oldest beyond
#: are forgotten (Alertmanager resolves them after its resolve_timeout)
MAX_WARNINGS: Final = 10_000
CLOSED: Final = CLOSED_STATUSES

Alert = dict[str, Any]
_LabelKey = tuple[tuple[str, str], ...]


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def label_value(value: str) -> str:
    """``value`` as a label value of at most :data:`LABEL_MAX` characters from
    ``[a-z0-9_:.-]``. Values that already qualify are kept; any other is cleaned and given a
    short hash suffix, so distinct values stay distinct."""
    if LABEL_VALUE.match(value) and len(value) <= LABEL_MAX:
        return value
    cleaned = re.sub(r"[^a-z0-9_:.-]+", "_", value.strip().lower()).strip("_") or "x"
    digest = hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{cleaned[:LABEL_MAX - 11]}-{digest}"


def receiving_departments(w: Warning) -> list[str]:
    """The departments notified of ``w`` (bounded label values), sorted."""
    found = sorted({SOURCE_DEPARTMENT[e.source] for e in w.evidence})
    return found or [UNASSIGNED]


def _with_query(base: str, **params: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}{urlencode(params)}"


def warning_alerts(w: Warning, *, runbook_url: str, dashboard_url: str,
                   ends_at: datetime | None = None) -> list[dict[str, Any]]:
    """Alertmanager v2 alerts of one warning version, one per receiving department.

    ``endsAt`` is set only for a resolved or cancelled warning: ``ends_at`` if given, else
    the warning's ``sent_at``, else its ``last_seen`` (never before ``startsAt``, which
    Alertmanager would refuse). Active alerts carry no ``endsAt``: they stay firing while
    they are re-sent.
    """
    region = label_value(w.region)
    scenario = label_value(w.scenario)
    severity = w.severity.lower()
    annotations = {
        "summary": f"{w.severity} {scenario} warning in {region}",
        "description": w.explanation if len(w.explanation) <= DESCRIPTION_MAX
        else w.explanation[:DESCRIPTION_MAX - 1] + "…",
        "runbook_url": f"{runbook_url}#{scenario}",
    }
    timing: dict[str, str] = {"startsAt": rfc3339(w.first_seen)}
    if w.status in CLOSED:
        end = ends_at or w.sent_at or w.last_seen
        timing["endsAt"] = rfc3339(max(end, w.first_seen))
    generator = _with_query(dashboard_url, **{"var-region": w.region})
    return [
        {
            "labels": {
                "alertname": ALERTNAME, "region": region, "scenario": scenario,
                "severity": severity, "department": dept,
                "warning_id": label_value(w.warning_id),
            },
            "annotations": dict(annotations),
            **timing,
            "generatorURL": generator,
        }
        for dept in receiving_departments(w)
    ]


def _key(alert: Alert) -> _LabelKey:
    return tuple(sorted(alert["labels"].items()))


class AlertmanagerSink:
    """Posts the alerts of active warnings to Alertmanager's ``/api/v2/alerts``.

    ``submit`` only updates memory; the task started by :meth:`start` does the network I/O.
    ``on_result`` is called with ``"sent"`` or ``"failed"`` after each POST.
    """

    def __init__(self, url: str, *, runbook_url: str, dashboard_url: str,
                 resend_s: float = 60.0, timeout_s: float = 5.0, max_backoff_s: float = 60.0,
                 on_result: Callable[[str], None] | None = None) -> None:
        self.url = url.rstrip("/")
        self.endpoint = f"{self.url}/api/v2/alerts"
        self.runbook_url = runbook_url
        self.dashboard_url = dashboard_url
        self.resend_s = resend_s
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.on_result = on_result
        # warning_id -> (version, alerts by label set)
        self._active: dict[str, tuple[int, dict[_LabelKey, Alert]]] = {}
        # alerts to post once more with endsAt, then drop
        self._resolved: dict[_LabelKey, Alert] = {}
        self._stations: dict[_LabelKey, Alert] = {}  # station-fault notices firing
        self._generation = 0  # bumped by every change
        self._posted_generation = 0  # the generation of the last successful post
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._failing = False

    # -- the stream side ---------------------------------------------------------------------
    def submit(self, warnings: list[Warning]) -> None:
        """Take new warning versions into the set of active alerts (never blocks or raises)."""
        for w in warnings:
            try:
                self._take(w)
            except Exception:  # a malformed warning must not stop the stream
                log.exception("warning %s not turned into Alertmanager alerts",
                              getattr(w, "warning_id", "?"))
        self._bound()
        if warnings:
            self._generation += 1
            self._wake.set()

    def _take(self, w: Warning) -> None:
        held = self._active.get(w.warning_id)
        if held is not None and w.version < held[0]:
            return  # an older version delivered again
        alerts = {_key(a): a for a in warning_alerts(
            w, runbook_url=self.runbook_url, dashboard_url=self.dashboard_url)}
        previous = held[1] if held else {}
        now = datetime.now(UTC)
        # alerts of the previous version this one does not repeat (severity changed, a
        # department dropped) are resolved now, not left to expire
        for k, a in previous.items():
            if k not in alerts:
                start = datetime.fromisoformat(a["startsAt"])
                self._resolved[k] = {**a, "endsAt": rfc3339(max(now, start))}
        if w.status in CLOSED:
            self._active.pop(w.warning_id, None)
            self._resolved.update(alerts)
        else:
            for k in alerts:
                self._resolved.pop(k, None)
            self._active.pop(w.warning_id, None)  # re-insert: dict order = recency
            self._active[w.warning_id] = (w.version, alerts)

    def _bound(self) -> None:
        excess = len(self._active) - MAX_WARNINGS
        if excess > 0:
            for wid in list(self._active)[:excess]:
                del self._active[wid]
            log.error("more than %d active warnings: the %d oldest are no longer re-sent to "
                      "Alertmanager", MAX_WARNINGS, excess)
        excess = len(self._resolved) - MAX_WARNINGS
        if excess > 0:
            for k in list(self._resolved)[:excess]:
                del self._resolved[k]
            log.error("more than %d resolved alerts waiting for Alertmanager: the %d oldest "
                      "are dropped (Alertmanager resolves them after its resolve_timeout)",
                      MAX_WARNINGS, excess)

    def notify_stations(self, rows: list[tuple[str, str, str, float]]) -> None:
        """The sensor series most in need of attention now ((station, metric, status,
        missing share), a bounded view): a notice fires for each faulty, silent or stuck
        one, and is resolved once it is no longer listed so."""
        fresh = station_alerts(rows, runbook_url=self.runbook_url, label=label_value)
        now = datetime.now(UTC)
        gone = {k: a for k, a in self._stations.items() if k not in fresh}
        for k, a in gone.items():
            start = datetime.fromisoformat(a["startsAt"].replace("Z", "+00:00"))
            self._resolved[k] = {**a, "endsAt": rfc3339(max(now, start))}
        new = [k for k in fresh if k not in self._stations]
        for k in new:
            self._resolved.pop(k, None)
        self._stations = {k: self._stations.get(k, a) for k, a in fresh.items()}
        if gone or new:
            self._generation += 1
            self._wake.set()

    def alerts(self) -> list[Alert]:
        """What the next POST sends: every active alert, most severe first (Alertmanager
        takes them in order, so an inhibiting alert is known before its duplicates), then
        the resolved ones."""
        out = [a for _, alerts in self._active.values() for a in alerts.values()]
        out += self._stations.values()
        out.sort(key=lambda a: _SEVERITY_RANK.get(a["labels"]["severity"], len(_SEVERITY_RANK)))
        return out + list(self._resolved.values())

    # -- the network side --------------------------------------------------------------------
    async def start(self) -> None:
        """Start the background poster (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._wake = asyncio.Event()  # bound to this loop; the loop posts pending changes
        self._task = asyncio.create_task(self._run(), name="tocsin-alertmanager")

    async def flush(self) -> None:
        """Nothing to wait for: the poster posts what changed at once, from its own task
        (the stream is never held up by Alertmanager)."""

    async def stop(self) -> None:
        """Stop the poster after one last, short attempt to deliver what changed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            if self._session is not None and self._generation != self._posted_generation:
                await self._post(timeout_s=min(self.timeout_s, 2.0))
        finally:
            if self._session is not None:
                await self._session.close()
                self._session = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(1.0, self.max_backoff_s)
        last_ok = loop.time()
        while True:
            if backoff.delay:
                await backoff.wait()  # new warnings do not shorten a backoff
            elif self._generation == self._posted_generation:
                wait_s = max(0.0, last_ok + self.resend_s - loop.time())
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s):
                        await self._wake.wait()
            self._wake.clear()
            if await self._post():
                backoff.reset()
                last_ok = loop.time()
            else:
                backoff.failed()

    async def _post(self, timeout_s: float | None = None) -> bool:
        """One POST of every alert held; True when Alertmanager took them (or there were
        none). Never raises, except cancellation."""
        generation = self._generation
        resolved = dict(self._resolved)
        batch = self.alerts()
        if not batch:
            self._posted_generation = generation
            return True
        session = self._session
        if session is None:
            return False
        timeout = aiohttp.ClientTimeout(total=timeout_s or self.timeout_s)
        ok = False
        try:
            async with session.post(self.endpoint, json=batch, timeout=timeout) as resp:
                if 200 <= resp.status < 300:
                    ok = True
                else:
                    body = (await resp.text())[:500]
                    if resp.status == 400:  # some alerts refused; a retry cannot help them
                        self._forget(resolved)
                    self._failed(f"HTTP {resp.status}: {body.strip()}")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # network errors, timeouts, anything else: retried
            self._failed(describe(e))
        if ok:
            self._forget(resolved)
            self._posted_generation = generation
            if self._failing:
                log.info("Alertmanager at %s reachable again; %d alerts delivered",
                         self.url, len(batch))
            self._failing = False
        report(self.on_result, "sent" if ok else "failed", log)
        return ok

    def _forget(self, posted: dict[_LabelKey, Alert]) -> None:
        """Drop resolved alerts that were posted, unless replaced since."""
        for k, a in posted.items():
            if self._resolved.get(k) is a:
                del self._resolved[k]

    def _failed(self, why: str) -> None:
        self._failing = True
        log.warning(
            "could not post %d alerts to Alertmanager at %s (%s); retrying with backoff. "
            "Check TOCSIN_ALERTMANAGER_URL and that Alertmanager is running and reachable "
            "from this worker (GET %s/-/ready).",
            len(self.alerts()), self.endpoint, why, self.url)
