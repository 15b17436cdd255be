"""The faust application: ingest+detect agents on the three source topics, a correlate agent
on the anomalies topic, sinks to the warnings and dead-letter topics.

Agents take events in batches (``take_events``) and send their outputs once per batch;
a batch is acknowledged only after its outputs are delivered (at-least-once)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import faust
from prometheus_client import CollectorRegistry, start_http_server
from pydantic import ValidationError

from streams.core.errors import ConfigError
from streams.core.regions import RegionRegistry
from streams.core.schemas import (
    ANOMALY_RECORD,
    Anomaly,
    Feedback,
    SourceWatermark,
    Warning,
    check_feedback,
)
from streams.core.settings import TocsinSettings
from streams.core.topics import (
    ANOMALIES,
    CHECKPOINTS,
    CONDITIONS,
    DEADLETTER,
    FEEDBACK,
    RELEASES,
    SOURCE_TOPICS,
    WARNINGS,
    WARNINGS_CAP,
    topic_name,
    view_topic,
)
from streams.ingest.ingestor import Origin, dead_letter
from streams.pipeline.stages import CorrelationStage, SourceStage, partition_for
from streams.publish.cap import CapError, to_cap
from streams.publish.grants import Grant, check_grants, load_grants, release_record, view
from streams.runtime.checkpoint import CheckpointError, Gate, PartitionSnapshot, encode, read_latest
from streams.runtime.faust_tuning import TunedApp
from streams.runtime.metrics import TocsinMetrics
from streams.runtime.monitor import NoopMonitor

log = logging.getLogger("tocsin.worker")

EXIT_SOFTWARE = 70  # EX_SOFTWARE: a batch failed half-way
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: checkpoints cannot be read


def _credentials(settings: TocsinSettings) -> Any:
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


def on_processing_error(topic: str, partition: int, offset: int, exc: BaseException) -> None:
    """Called for a record whose processing raised: the record goes to the dead-letter topic."""
    log.error("processing failed for %s[%d]@%d: %s: %s; record sent to the dead-letter topic",
              topic, partition, offset, type(exc).__name__, exc)


class Worker:
    """Holds the faust app and the per-worker processing state."""

    def __init__(self, settings: TocsinSettings, registry: RegionRegistry) -> None:
        self.settings = settings
        self.sources = SourceStage(settings, registry)
        self.correlation = CorrelationStage(settings)
        self.registry = registry
        # earlier versions of open warnings (id -> version -> warning), for the CAP
        # references of their updates
        self._cap_prev: dict[str, dict[int, Warning]] = {}
        # checkpointing (streams/checkpoint.py): the next offset the state expects per
        # topic-partition, the partitions changed since their last checkpoint, the
        # generation of each partition's last checkpoint, and the partition numbers this
        # worker owns (None: no assignment yet, as in agent tests)
        self.gate = Gate()
        self._next: dict[tuple[str, int], int] = {}
        self._dirty: set[int] = set()
        self._gen: dict[int, int] = {}
        self._assigned: set[int] | None = None
        self._checkpointing = asyncio.Lock()
        self._uncommitted: dict[Any, int] = {}  # TP -> offset written, not yet committed
        self._skipped: Counter[str] = Counter()  # re-delivered records skipped, per topic
        self._generation = 0  # consumer-group generation of the last assignment
        # set when the state no longer matches the offsets: no checkpoint may follow
        self._inconsistent: str | None = None
        key = settings.checkpoint_key
        self._checkpoint_key = None if key is None else key.get_secret_value().encode()
        self.warnings_sent = 0
        self.dead_sent = 0
        self.processed: dict[str, int] = {}  # records fully handled, per agent
        s = settings
        extra: dict[str, Any] = {"Monitor": NoopMonitor} if s.noop_monitor else {}
        self.metrics = TocsinMetrics(
            CollectorRegistry(), regions=registry.ids(),
            region_coords={r: (registry.get(r).name, registry.get(r).lat, registry.get(r).lon)
                           for r in registry.ids()},
            scenarios=[t.name for t in self.correlation.templates.scenarios],
            app_id=s.app_id, partitions=s.partitions, max_signals=s.metrics_max_signals)
        self.metrics.add_signal_reader(self.sources.signals)
        self._sinks: list[Any] = []
        self.app = TunedApp(
            s.app_id,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            batch_drain=s.batch_drain,
            **extra,
            broker=s.faust_broker,
            broker_credentials=_credentials(s),
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

        def topic(base: str) -> Any:
            return self.app.topic(topic_name(s, base), key_type=bytes, value_type=bytes,
                                  value_serializer="raw", key_serializer="raw",
                                  partitions=s.partitions)

        self.deadletter_topic = topic(DEADLETTER)
        self.anomalies_topic = topic(ANOMALIES)
        self.warnings_topic = topic(WARNINGS)
        self.conditions_topic = topic(CONDITIONS)
        self.cap_topic = topic(WARNINGS_CAP)
        self.feedback_topic = topic(FEEDBACK)
        # sharing grants (docs/sharing.md): unset, no views and no releases
        tpl = self.correlation.templates
        self.grants: list[Grant] = [] if s.grants is None else check_grants(
            load_grants(s.grants), {t.name for t in (*tpl.scenarios, tpl.generic)},
            set(registry.ids()), str(s.grants))
        self.view_topics = {g.audience: topic(view_topic(g.audience)) for g in self.grants}
        self.releases_topic = topic(RELEASES)
        self.checkpoints_topic = topic(CHECKPOINTS)
        self._agent_topics = {topic_name(s, b) for b in (*SOURCE_TOPICS.values(), ANOMALIES,
                                                        FEEDBACK)}
        self.app.agent(self.feedback_topic, name="tocsin.feedback")(self._feedback)
        for source, base in SOURCE_TOPICS.items():
            self.app.agent(topic(base), name=f"tocsin.ingest.{source}")(self._ingest_agent(source))
        self.app.agent(self.anomalies_topic, name="tocsin.correlate")(self._correlate)
        self.app.timer(10.0)(self._report)
        self.app.timer(1.0)(self._flush_idle)
        self.app.task(self._start_sinks)
        self.app.task(self._watch_broker)
        self.app.timer(s.checkpoint_interval_s)(self._checkpoint_tick)
        self.app.on_before_shutdown.connect(self._final_checkpoint)
        self.app.on_before_shutdown.connect(self._stop_sinks)
        self.app.on_rebalance_complete.connect(self._on_rebalance)
        self.app.on_partitions_revoked.connect(self._on_revoked)
        self.app.on_partitions_assigned.connect(self._on_assigned)

    async def _on_rebalance(self, *args: Any, **kwargs: Any) -> None:
        assigned = self.app.consumer.assignment()
        self.metrics.observe_assignment((tp.topic, tp.partition) for tp in assigned)
        log.info("rebalance complete: %d partitions assigned", len(assigned))

    # -- checkpoints (streams/checkpoint.py) ---------------------------------------------
    def _accept(self, m: Any) -> bool:
        """Whether record ``m`` is to be processed: its partition is this worker's and the
        partition's state does not already cover it (re-delivered after a restart or a
        rebalance, behind the restored state)."""
        if self._assigned is not None and m.partition not in self._assigned:
            return False
        nxt = self._next.get((m.topic, m.partition))
        if nxt is not None and m.offset < nxt:
            self._skipped[m.topic] += 1  # counted in the metrics once per batch
            return False
        return True

    def _done(self, m: Any) -> None:
        """Record ``m`` is in the state (and its outputs will be delivered with its batch)."""
        self._next[m.topic, m.partition] = m.offset + 1
        self._dirty.add(m.partition)

    @asynccontextmanager
    async def _batch(self, agent: str) -> AsyncIterator[None]:
        """One batch: under the gate, and all or nothing. A batch that fails half-way has
        changed the state for records whose outputs were not all delivered, and faust
        would acknowledge the rest: nothing may be checkpointed after that, so the worker
        exits and its replacement resumes from the last checkpoint."""
        async with self.gate.batch():
            try:
                yield
                for topic, n in self._skipped.items():
                    self.metrics.records_skipped.labels(topic).inc(n)
                self._skipped.clear()
            except asyncio.CancelledError:  # shutting down mid-batch
                self._inconsistent = f"a {agent} batch was cancelled half-way"
                raise
            except Exception as exc:
                self._inconsistent = f"a {agent} batch failed: {type(exc).__name__}: {exc}"
                log.critical("%s batch failed half-way (%s: %s); this worker's state no "
                             "longer matches its offsets, so it exits (status %d) to resume "
                             "from its last checkpoint", agent, type(exc).__name__, exc,
                             EXIT_SOFTWARE, exc_info=True)
                self._die(EXIT_SOFTWARE)
                raise

    def _die(self, code: int) -> None:
        """Leave at once: no final checkpoint, no commit (tests replace this)."""
        logging.shutdown()
        os._exit(code)

    def _cap_prev_of(self, p: int) -> list[str]:
        """Ids of the warnings held for CAP references whose region is on partition ``p``
        (anomalies, and so warnings, are partitioned by region)."""
        n = self.settings.partitions
        return [wid for wid, vs in self._cap_prev.items()
                if vs and partition_for(next(iter(vs.values())).region.encode(), n) == p]

    def _capture(self, p: int, gen: int) -> PartitionSnapshot:
        cap_prev = {wid: self._cap_prev[wid] for wid in self._cap_prev_of(p)}
        return PartitionSnapshot(
            partition=p, gen=gen, created_at=time.time(),
            group_gen=int(getattr(self.app, "consumer_generation_id", 0) or 0),
            offsets={t: n for (t, q), n in self._next.items() if q == p},
            state={"sources": self.sources.export(p),
                   "correlation": self.correlation.export(p), "cap_prev": cap_prev})

    def _adopt(self, snap: PartitionSnapshot) -> None:
        p = snap.partition
        self.sources.adopt(p, snap.state.get("sources") or {})
        self.correlation.adopt(p, snap.state.get("correlation"), time.monotonic())
        self._cap_prev.update(snap.state.get("cap_prev") or {})
        for t, n in snap.offsets.items():
            self._next[t, p] = n
        self._gen[p] = snap.gen

    def _drop(self, p: int) -> None:
        """Forget partition ``p`` (revoked: its new owner restores it from its checkpoint)."""
        self.sources.drop(p)
        self.correlation.drop(p)
        for wid in self._cap_prev_of(p):
            del self._cap_prev[wid]
        for k in [k for k in self._next if k[1] == p]:
            del self._next[k]
        for tp in [tp for tp in self._uncommitted if tp.partition == p]:
            del self._uncommitted[tp]
        self._dirty.discard(p)
        self._gen.pop(p, None)

    async def checkpoint(self, *, commit: bool = True, reason: str = "interval") -> int:
        """Write a checkpoint of every partition changed since its last one, then commit
        the offsets they cover. Returns the number of partitions written.

        The capture waits until no batch is in flight (:class:`Gate`): every batch
        delivers its outputs before it ends, so the offsets in a checkpoint never cover
        an event whose outputs are not yet in Kafka (at-least-once)."""
        if self._inconsistent:
            log.error("no checkpoint (%s): %s", reason, self._inconsistent)
            return 0
        async with self._checkpointing:
            started = time.perf_counter()
            key, app_id = self._checkpoint_key, self.settings.app_id
            records: list[tuple[PartitionSnapshot, list[tuple[bytes, bytes]]]] = []
            async with self.gate.exclusive():
                for p in sorted(self._dirty):
                    try:  # a partition that cannot be captured does not hold up the others
                        snap = self._capture(p, self._gen.get(p, 0) + 1)
                        records.append((snap, encode(snap, app_id, key)))
                    except Exception:  # a bug: keep processing, alert
                        self.metrics.checkpoints.labels("failed").inc()
                        log.exception("checkpoint of partition %d could not be captured; "
                                      "its offsets stay where they were", p)
                        continue
                    self._dirty.discard(p)
            todo = [sn.partition for sn, _ in records]
            if records:
                try:
                    pending = [await self._send(self.checkpoints_topic, k, v,
                                                partition=sn.partition)
                               for sn, recs in records for k, v in recs]
                    await asyncio.gather(*pending)
                except Exception as exc:
                    self._dirty.update(todo)  # written next time, same generation numbers
                    self.metrics.checkpoints.labels("failed").inc(len(todo))
                    log.error("checkpoint of partitions %s not written (%s: %s); retried at "
                              "the next interval, offsets stay where they were", todo,
                              type(exc).__name__, exc)
                    return 0
                from faust.types import TP

                for sn, _ in records:
                    self._gen[sn.partition] = sn.gen
                    for t, n in sn.offsets.items():
                        self._uncommitted[TP(t, sn.partition)] = n
                size = sum(len(v) for _, recs in records for _, v in recs)
                self.metrics.checkpoints.labels("written").inc(len(todo))
                self.metrics.checkpoint_bytes.set(size)
            elif not (commit and self._uncommitted):
                return 0
            committed = "not committed"
            if commit and self._uncommitted:
                offsets = dict(self._uncommitted)
                try:
                    if await cast(Any, self.app.consumer).commit_offsets(offsets):
                        for tp, n in offsets.items():
                            if self._uncommitted.get(tp) == n:
                                del self._uncommitted[tp]
                        committed = "committed"
                except Exception as exc:  # the next checkpoint commits again
                    log.warning("offsets of checkpoint not committed (%s: %s); retried",
                                type(exc).__name__, exc)
            self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)
            if records:
                log.info("checkpoint (%s): partitions %s, %d bytes, offsets %s", reason,
                         todo, size, committed)
            return len(todo)

    async def _checkpoint_tick(self) -> None:
        if self.app.rebalancing or self._assigned is None:
            return  # the revoke handler writes one; the commit would be refused
        await self.checkpoint()

    async def _final_checkpoint(self, *args: Any, **kwargs: Any) -> None:
        if self._assigned is None:
            return
        try:
            if not await self.checkpoint(reason="shutdown") and not self._inconsistent:
                log.info("checkpoint (shutdown): every partition's state is already saved")
        except Exception as exc:  # shutting down: the last periodic checkpoint stands
            log.warning("no checkpoint at shutdown (%s: %s)", type(exc).__name__, exc)

    async def _on_revoked(self, *args: Any, **kwargs: Any) -> None:
        """Before the group rebalances: checkpoint and commit what this worker has
        processed, so the partitions' next owners resume exactly here (a commit the
        coordinator refuses is harmless: the owner skips what the checkpoint covers)."""
        if self._assigned is not None:
            await self.checkpoint(reason="rebalance")

    async def _on_assigned(self, *args: Any, **kwargs: Any) -> None:
        """Drop the partitions this worker lost; restore those it gained from their
        checkpoints before any of their records is processed (the gate stays closed
        until then).

        Kept partitions keep their state only when this worker took part in every
        rebalance since (group generation + 1); otherwise it may have been expelled
        without noticing while another worker processed them, and all are restored."""
        assigned = args[1] if len(args) > 1 else kwargs.get("assigned", ())  # (sender, tps)
        parts = {tp.partition for tp in assigned if tp.topic in self._agent_topics}
        generation = int(getattr(self.app, "consumer_generation_id", 0) or 0)
        async with self.gate.exclusive():
            before = self._assigned or set()
            if self._assigned is not None and generation != self._generation + 1:
                log.warning("group generation %d after %d: this worker missed a rebalance; "
                            "restoring every partition from its checkpoint", generation,
                            self._generation)
                before = set()
            self._generation = generation
            for p in sorted((self._assigned or set()) - (parts & before)):
                self._drop(p)
            gained = sorted(parts - before)
            self._check_copartitioned(assigned, parts)
            self._assigned = parts
            if not gained:
                return
            try:
                snaps, refused, max_gen = await self._read_checkpoints(gained)
            except CheckpointError as exc:
                # the gate stays closed: nothing of these partitions is processed cold
                self._inconsistent = str(exc)
                log.critical("%s; exiting (status %d) so that the orchestrator retries",
                             exc, EXIT_UNAVAILABLE)
                self._die(EXIT_UNAVAILABLE)
                raise
            for reason in refused:
                log.error("checkpoint refused: %s", reason)
            for p in gained:
                snap = snaps.get(p)
                self._gen[p] = max_gen.get(p, 0)
                if snap is None:
                    self.metrics.restores.labels("none").inc()
                    continue
                self._adopt(snap)
                self.metrics.restores.labels("restored").inc()
                log.info("partition %d restored from checkpoint generation %d (%s), "
                         "offsets %s", p, snap.gen,
                         datetime.fromtimestamp(snap.created_at, UTC).isoformat(
                             timespec="seconds"), snap.offsets)
            if refused:
                self.metrics.restores.labels("refused").inc(len(refused))

    def _check_copartitioned(self, assigned: Any, parts: set[int]) -> None:
        """Every agent topic's partition ``p`` must come to the same worker (one state per
        partition number); faust does so when their partition counts are equal."""
        have: dict[int, set[str]] = {}
        for tp in assigned:
            if tp.topic in self._agent_topics:
                have.setdefault(tp.partition, set()).add(tp.topic)
        split = {p: sorted(self._agent_topics - t) for p, t in have.items()
                 if t != self._agent_topics}
        if split:
            log.error("partitions assigned without all their topics %s: the agent topics' "
                      "partition counts differ (check `tocsin topics create`); those "
                      "partitions' state is split between workers", split)

    async def _read_checkpoints(self, parts: list[int]) -> tuple[
            dict[int, PartitionSnapshot], list[str], dict[int, int]]:
        """Read the checkpoints of ``parts``, retried briefly (this runs inside the
        rebalance callback, before heartbeats resume), then :class:`CheckpointError`."""
        name = topic_name(self.settings, CHECKPOINTS)
        for attempt in range(3):
            try:
                return await read_latest(self.settings, name, parts, self._checkpoint_key)
            except Exception as exc:
                if attempt == 2:
                    raise CheckpointError(
                        f"cannot read the checkpoints of partitions {parts} from {name}: "
                        f"{type(exc).__name__}: {exc}; check that the topic exists "
                        "(`tocsin topics create`) and the broker answers") from exc
                log.warning("reading checkpoints failed (%s), retrying", exc)
                await asyncio.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- notification sinks (never block the stream) ----------------------------------------
    def _make_sinks(self) -> list[Any]:
        s, m = self.settings, self.metrics
        sinks: list[Any] = []
        if s.alertmanager_url:
            from streams.publish.alertmanager import AlertmanagerSink

            sinks.append(AlertmanagerSink(
                s.alertmanager_url, runbook_url=s.runbook_url, dashboard_url=s.dashboard_url,
                resend_s=s.alertmanager_resend_s,
                on_result=lambda r: m.notifications.labels("alertmanager", r).inc()))
        if s.grafana_url:
            from streams.publish.grafana import AnnotationSink

            sinks.append(AnnotationSink(
                s.grafana_url,
                s.grafana_token.get_secret_value() if s.grafana_token else None,
                s.grafana_dashboard_uid,
                on_result=lambda r: m.notifications.labels("grafana", r).inc()))
        return sinks

    async def _watch_broker(self) -> None:
        from streams.runtime.watchdog import EXIT_BROKER_UNAVAILABLE, BrokerWatchdog

        def gone(exc: Exception) -> None:
            log.critical("%s: %s", type(exc).__name__, exc)
            logging.shutdown()
            os._exit(EXIT_BROKER_UNAVAILABLE)  # no broker: nothing left to flush or commit

        def checked(ok: bool, down: float) -> None:
            self.metrics.broker_reachable.set(1 if ok else 0)

        await BrokerWatchdog(self.settings, gone, checked).run()

    async def _start_sinks(self) -> None:
        self._sinks = self._make_sinks()
        for sink in self._sinks:
            await sink.start()

    async def _stop_sinks(self, *args: Any, **kwargs: Any) -> None:
        for sink in self._sinks:
            await sink.stop()

    def _lag(self, events: list[Any]) -> None:
        """Consumer lag of the partitions in this batch (high watermark - next offset)."""
        last: dict[Any, int] = {}
        for ev in events:
            last[ev.message.tp] = ev.message.offset
        consumer = self.app.consumer
        for tp, offset in last.items():
            try:
                hw = consumer.highwater(tp)
            except Exception:  # not known yet: no figure this batch
                continue
            if hw is not None:
                self.metrics.observe_lag(tp.topic, tp.partition, int(hw) - offset - 1)

    # -- agents ---------------------------------------------------------------------------
    def _ingest_agent(self, source: str) -> Any:
        async def ingest(stream: Any) -> AsyncIterator[None]:
            s = self.settings
            async for events in stream.take_events(s.batch_size, s.batch_within_s):
                async with self._batch(f"ingest.{source}"):
                    await self._ingest_batch(source, events)
                yield None

        ingest.__name__ = f"ingest_{source}"
        return ingest

    async def _ingest_batch(self, source: str, events: list[Any]) -> None:
        s = self.settings
        started = time.perf_counter()
        pending: list[Awaitable[Any]] = []
        touched: set[int] = set()
        dead_reasons: Counter[str] = Counter()
        found: list[Anomaly] = []
        for ev in events:
            m = ev.message
            if not self._accept(m):
                continue
            self._done(m)
            touched.add(m.partition)
            origin = Origin(m.topic, m.partition, m.offset, m.key)
            raw = ev.value if isinstance(ev.value, bytes) else bytes(ev.value or b"")
            try:
                step = self.sources.process(source, raw, origin)
            except Exception as exc:  # a bug must not stop the stream nor lose data
                on_processing_error(m.topic, m.partition, m.offset, exc)
                d = dead_letter(raw, origin, f"processing error: {exc!r}",
                                "processing_error")
                pending.append(await self._send(self.deadletter_topic, None,
                                                d.model_dump_json().encode()))
                dead_reasons["processing_error"] += 1
                continue
            if step.dead is not None:
                pending.append(await self._send(
                    self.deadletter_topic, m.key, step.dead.model_dump_json().encode()))
                self.dead_sent += 1
                dead_reasons[step.dead.error_type] += 1
            found.extend(step.anomalies)
            for a in step.anomalies:
                if a.city:  # the common-mode view: every correlate partition gets it
                    body = a.model_dump_json().encode()
                    for target in range(s.partitions):
                        pending.append(await self._send(
                            self.anomalies_topic, None, body, partition=target))
                    continue
                pending.append(await self._send(
                    self.anomalies_topic, a.region.encode(),
                    a.model_dump_json().encode()))
        # after this batch's anomalies: tell every correlate partition how far each
        # source partition has got, so it can release anomalies in event-time order
        for part in sorted(touched):
            wm = self.sources.watermark(source, part)
            if wm is None:
                continue
            marker = SourceWatermark(
                source=source, partition=part,
                watermark=datetime.fromtimestamp(wm, UTC),
            ).model_dump_json().encode()
            for target in range(s.partitions):
                pending.append(await self._send(
                    self.anomalies_topic, None, marker, partition=target))
        detect_s = time.perf_counter() - started
        if pending:
            await asyncio.gather(*pending)
        c = self.sources.counters
        self.metrics.observe_source(
            source, {"received": c.received[source], "valid": c.valid[source],
                     "duplicate": c.duplicate[source]},
            self.sources.late(source), dead_reasons,
            max((w for p in touched
                 if (w := self.sources.watermark(source, p)) is not None),
                default=None),
            detect_s, len(events))
        self.metrics.observe_anomalies(found)
        if source == "env":
            self.metrics.observe_faults(self.sources.sensor_faults())
        self.metrics.observe_batch(f"ingest.{source}", time.perf_counter() - started)
        self._lag(events)
        self.processed[source] = self.processed.get(source, 0) + len(events)

    async def _correlate(self, stream: Any) -> AsyncIterator[None]:
        s = self.settings
        async for events in stream.take_events(s.batch_size, s.batch_within_s):
            async with self._batch("correlate"):
                await self._correlate_batch(events)
            yield None

    async def _correlate_batch(self, events: list[Any]) -> None:
        started = time.perf_counter()
        pending: list[Awaitable[Any]] = []
        touched: set[int] = set()
        wall = time.monotonic()
        for ev in events:
            m = ev.message
            if not self._accept(m):
                continue
            self._done(m)
            raw = ev.value if isinstance(ev.value, bytes) else bytes(ev.value or b"")
            try:
                rec = ANOMALY_RECORD.validate_json(raw)
            except (ValidationError, ValueError) as exc:
                on_processing_error(m.topic, m.partition, m.offset, exc)
                msg = (exc.errors()[0]["msg"] if isinstance(exc, ValidationError)
                       else str(exc))
                d = dead_letter(raw, Origin(m.topic, m.partition, m.offset, m.key),
                                f"bad anomaly record: {msg}", "schema")
                pending.append(await self._send(self.deadletter_topic, m.key,
                                                d.model_dump_json().encode()))
                continue
            self.correlation.add(m.partition, rec, wall)
            touched.add(m.partition)
        for part in sorted(touched):
            pending.extend(await self._publish(self.correlation.release(part, wall)))
        pending.extend(await self._publish_conditions())
        if pending:
            await asyncio.gather(*pending)
        m = self.metrics
        m.observe_batch("correlate", time.perf_counter() - started)
        m.batch_events.labels("correlate").inc(len(events))
        m.reorder_held.set(self.correlation.held())
        m.observe_common_mode(self.correlation.common_mode())
        self._lag(events)
        self.processed["correlate"] = self.processed.get("correlate", 0) + len(events)

    async def _feedback(self, stream: Any) -> AsyncIterator[None]:
        """Validate duty officers' decisions and forward them to the correlator that holds
        the region (through the anomalies topic, keyed by region); bad ones are
        dead-lettered with the reason."""
        s = self.settings
        async for events in stream.take_events(s.batch_size, s.batch_within_s):
            async with self._batch("feedback"):
                await self._feedback_batch(events)
            yield None

    async def _feedback_batch(self, events: list[Any]) -> None:
        from detectors.feedback import Decision, InvalidDecision

        pending: list[Awaitable[Any]] = []
        for ev in events:
            m = ev.message
            if not self._accept(m):
                continue
            self._done(m)
            origin = Origin(m.topic, m.partition, m.offset, m.key)
            raw = ev.value if isinstance(ev.value, bytes) else bytes(ev.value or b"")
            try:
                fb = check_feedback(Feedback.model_validate_json(raw))
                Decision(fb.warning_id, fb.action, fb.by, fb.at.timestamp(), fb.reason)
            except (ValidationError, InvalidDecision, ValueError, OverflowError) as exc:
                msg = (exc.errors()[0]["msg"] if isinstance(exc, ValidationError)
                       else str(exc))
                d = dead_letter(raw, origin, f"bad feedback: {msg}", "schema")
                pending.append(await self._send(self.deadletter_topic, m.key,
                                                d.model_dump_json().encode()))
                continue
            pending.append(await self._send(self.anomalies_topic, fb.region.encode(),
                                            fb.model_dump_json().encode()))
        if pending:
            await asyncio.gather(*pending)
        self.processed["feedback"] = self.processed.get("feedback", 0) + len(events)

    def _cap(self, w: Warning) -> bytes | None:
        """The CAP 1.2 rendering of ``w`` (None, logged, if it cannot be rendered: an
        update whose earlier versions this worker has not seen since it started)."""
        versions = self._cap_prev.setdefault(w.warning_id, {})
        # earlier versions only (a version re-emitted after a restart is not its own
        # predecessor)
        prev = [versions[v] for v in sorted(versions) if v < w.version]
        tpl = self.correlation.templates.get(w.scenario)
        try:
            closed = w.status in ("resolved", "cancelled")  # keep CAP's own wording
            xml = to_cap(w, self.registry, sender=self.settings.cap_sender, previous=prev,
                         instruction=None if closed else (tpl.instruction or None),
                         category=tpl.cap_category)  # type: ignore[arg-type]
        except CapError as exc:
            log.warning("no CAP rendering of %s v%d: %s", w.warning_id, w.version, exc)
            xml = None
        versions[w.version] = w
        if w.status in ("resolved", "cancelled"):
            self._cap_prev.pop(w.warning_id, None)
        return None if xml is None else xml.encode("utf-8")

    async def _publish(self, warnings: list[Warning]) -> list[Awaitable[Any]]:
        pending: list[Awaitable[Any]] = []
        if warnings:
            self.metrics.observe_warnings(warnings)
            for sink in self._sinks:
                sink.submit(warnings)
        for w in warnings:
            log.info("warning %s v%d %s %s %s", w.warning_id, w.version, w.status,
                     w.region, w.scenario)
            key = w.warning_id.encode()
            pending.append(await self._send(self.warnings_topic, key,
                                            w.model_dump_json().encode()))
            if self.settings.publish_cap and (xml := self._cap(w)) is not None:
                pending.append(await self._send(self.cap_topic, key, xml))
            self.warnings_sent += 1
            # per-audience views: the release time (wall clock) decides whether a grant is
            # in force; an expired or non-covering grant delivers nothing and records nothing
            now = datetime.now(UTC)
            for g in self.grants:
                if (v := view(w, g, now)) is None:
                    continue
                pending.append(await self._send(self.view_topics[g.audience], key,
                                                json.dumps(v).encode()))
                pending.append(await self._send(self.releases_topic, key, json.dumps(
                    release_record(w, g, now)).encode()))
        return pending

    async def _publish_conditions(self) -> list[Awaitable[Any]]:
        """City-wide conditions (only partition 0's correlator publishes them)."""
        pending: list[Awaitable[Any]] = []
        for c in self.correlation.take_conditions():
            log.info("city-wide condition %s v%d %s %s %s", c.condition_id, c.version,
                     c.status, c.level, ",".join(c.kinds))
            self.metrics.conditions.labels(c.level, c.status).inc()
            pending.append(await self._send(self.conditions_topic, c.condition_id.encode(),
                                            c.model_dump_json().encode()))
        return pending

    async def _flush_idle(self) -> None:
        """Input stopped: correlate what the reorder buffers still hold."""
        if not self.correlation.held():
            return
        async with self._batch("flush"):
            held = {p: len(self.correlation.part(p).buffer)
                    for p in self.correlation.partitions()}
            pending = await self._publish(self.correlation.flush_idle(time.monotonic()))
            pending.extend(await self._publish_conditions())
            self._dirty.update(p for p, n in held.items()
                               if len(self.correlation.part(p).buffer) != n)
            if pending:
                await asyncio.gather(*pending)

    @staticmethod
    async def _send(topic: Any, key: bytes | None, value: bytes,
                    partition: int | None = None) -> Awaitable[Any]:
        """Queue one record; the returned future resolves once the broker has it."""
        fut: Awaitable[Any] = await topic.send(key=key, value=value, partition=partition)
        return fut

    async def _report(self) -> None:
        self.metrics.tracked_series.set(self.sources.n_series)
        c = self.sources.counters
        log.info("received=%s valid=%s dead=%s duplicate=%s anomalies=%d warnings=%d at %s",
                 c.received, c.valid, c.dead, c.duplicate, c.anomalies, self.warnings_sent,
                 datetime.now(UTC).isoformat(timespec="seconds"))

    def serve_metrics(self) -> None:
        """Serve /metrics on ``metrics_addr:metrics_port`` (a daemon thread; 0: none)."""
        s = self.settings
        if s.metrics_port:
            try:
                start_http_server(s.metrics_port, s.metrics_addr,
                                  registry=self.metrics.registry)
            except OSError as exc:
                raise ConfigError(
                    f"cannot serve metrics on {s.metrics_addr}:{s.metrics_port}: "
                    f"{exc.strerror or exc}; set TOCSIN_METRICS_PORT to a free port "
                    "(0 turns the endpoint off)") from exc
            log.info("metrics on http://%s:%d/metrics", s.metrics_addr, s.metrics_port)

    def run(self, loglevel: str = "info") -> None:
        """Run the worker until stopped (SIGINT/SIGTERM)."""
        from streams.core.topics import check_topics

        self.serve_metrics()  # first: an outage at start shows on tocsin_broker_reachable
        check_topics(self.settings)  # missing or unevenly partitioned topics: refuse
        if self.settings.uvloop:
            try:
                import uvloop
            except ImportError:
                log.warning("uvloop is not installed: running on asyncio's default loop")
            else:
                uvloop.install()
        worker = faust.Worker(self.app, loglevel=loglevel, quiet=True)
        worker.execute_from_commandline()
