"""The Kafka outputs of warnings, as sinks (:class:`streams.publish.sink.Sink`).

Every Kafka sink puts its records into one shared :class:`Outbox`; ``flush`` sends them in
the order they were put and waits until the broker has all of them, so a batch is
acknowledged only after its outputs are delivered (at-least-once). ``submit`` does no I/O.

- :class:`WarningsTopicSink`: each warning version as JSON on ``tocsin.warnings``;
- :class:`CapSink`: its CAP 1.2 rendering on ``tocsin.warnings.cap``; keeps the earlier
  versions of open warnings, for the references of their updates (checkpointed per
  partition: :meth:`CapSink.export`, :meth:`CapSink.adopt`, :meth:`CapSink.drop`);
- :class:`SharingSink`: the per-audience views and their release records
  (docs/sharing.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from detectors.base import CLOSED_STATUSES
from detectors.fusion.templates import TemplateSet
from streams.core.regions import RegionRegistry
from streams.core.schemas import Warning
from streams.pipeline.stages import partition_for
from streams.publish.cap import CapError, to_cap
from streams.publish.grants import Grant, release_record, view

log = logging.getLogger("tocsin.worker")

#: queue one record (topic, key, value, partition); the returned future resolves once the
#: broker has it
Send = Callable[[Any, bytes | None, bytes, int | None], Awaitable[Awaitable[Any]]]


class Outbox:
    """Records for Kafka topics, sent together by :meth:`flush`."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._records: list[tuple[Any, bytes | None, bytes]] = []
        # one flush at a time: agents share the outbox (correlate, and ingest for entity
        # risk), and a flush must not return while another holds records put before it
        self._lock = asyncio.Lock()

    def put(self, topic: Any, key: bytes | None, value: bytes) -> None:
        self._records.append((topic, key, value))

    async def flush(self) -> None:
        """Send every record put so far, in order; return once the broker has all."""
        async with self._lock:
            records, self._records = self._records, []
            pending = [await self._send(t, k, v, None) for t, k, v in records]
            if pending:
                await asyncio.gather(*pending)


class KafkaSink:
    """A sink whose records go through the shared outbox (no background work)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def start(self) -> None:
        pass

    def submit(self, warnings: list[Warning]) -> None:
        raise NotImplementedError

    async def flush(self) -> None:
        await self.outbox.flush()

    async def stop(self) -> None:
        pass


class WarningsTopicSink(KafkaSink):
    """Each warning version as JSON, keyed by warning id."""

    def __init__(self, outbox: Outbox, topic: Any) -> None:
        super().__init__(outbox)
        self.topic = topic

    def submit(self, warnings: list[Warning]) -> None:
        for w in warnings:
            self.outbox.put(self.topic, w.warning_id.encode(), w.model_dump_json().encode())


class CapSink(KafkaSink):
    """Each warning version as a CAP 1.2 alert, keyed by warning id."""

    def __init__(self, outbox: Outbox, topic: Any, *, registry: RegionRegistry,
                 templates: TemplateSet, sender: str, partitions: int) -> None:
        super().__init__(outbox)
        self.topic = topic
        self.registry = registry
        self.templates = templates
        self.sender = sender
        self.partitions = partitions
        # earlier versions of open warnings (id -> version -> warning), for the CAP
        # references of their updates
        self._prev: dict[str, dict[int, Warning]] = {}

    def submit(self, warnings: list[Warning]) -> None:
        for w in warnings:
            if (xml := self.render(w)) is not None:
                self.outbox.put(self.topic, w.warning_id.encode(), xml)

    def render(self, w: Warning) -> bytes | None:
        """The CAP 1.2 rendering of ``w`` (None, logged, if it cannot be rendered: an
        update whose earlier versions this worker has not seen since it started)."""
        versions = self._prev.setdefault(w.warning_id, {})
        # earlier versions only (a version re-emitted after a restart is not its own
        # predecessor)
        prev = [versions[v] for v in sorted(versions) if v < w.version]
        tpl = self.templates.get(w.scenario)
        # a scenario of no template (entity_risk): CAP's own wording (cap_scenarios.py)
        own = tpl is not self.templates.generic or w.scenario == tpl.name
        try:
            closed = w.status in CLOSED_STATUSES or not own  # keep CAP's own wording
            xml = to_cap(w, self.registry, sender=self.sender, previous=prev,
                         instruction=None if closed else (tpl.instruction or None),
                         category=tpl.cap_category if own else None)  # type: ignore[arg-type]
        except CapError as exc:
            log.warning("no CAP rendering of %s v%d: %s", w.warning_id, w.version, exc)
            xml = None
        versions[w.version] = w
        if w.status in CLOSED_STATUSES:
            self._prev.pop(w.warning_id, None)
        return None if xml is None else xml.encode("utf-8")

    # -- checkpointed per partition (anomalies, and so warnings, are partitioned by region)
    def _ids_of(self, p: int) -> list[str]:
        return [wid for wid, vs in self._prev.items()
                if vs and partition_for(next(iter(vs.values())).region.encode(),
                                        self.partitions) == p]

    def export(self, p: int) -> dict[str, dict[int, Warning]]:
        """The earlier versions held for the warnings of partition ``p``."""
        return {wid: self._prev[wid] for wid in self._ids_of(p)}

    def adopt(self, state: dict[str, dict[int, Warning]]) -> None:
        self._prev.update(state)

    def drop(self, p: int) -> None:
        for wid in self._ids_of(p):
            del self._prev[wid]


class SharingSink(KafkaSink):
    """Per-audience views of each warning version, and a release record of each view."""

    def __init__(self, outbox: Outbox, grants: list[Grant], view_topics: dict[str, Any],
                 releases_topic: Any) -> None:
        super().__init__(outbox)
        self.grants = grants
        self.view_topics = view_topics
        self.releases_topic = releases_topic

    def submit(self, warnings: list[Warning]) -> None:
        for w in warnings:
            key = w.warning_id.encode()
            # the release time (wall clock) decides whether a grant is in force; an expired
            # or non-covering grant delivers nothing and records nothing
            now = datetime.now(UTC)
            for g in self.grants:
                if (v := view(w, g, now)) is None:
                    continue
                self.outbox.put(self.view_topics[g.audience], key, json.dumps(v).encode())
                self.outbox.put(self.releases_topic, key,
                                json.dumps(release_record(w, g, now)).encode())
