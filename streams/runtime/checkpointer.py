"""Checkpointing of a worker's state (the format: :mod:`streams.runtime.checkpoint`).

The :class:`Checkpointer` owns everything between the agents and the checkpoints topic:

1. **gate**: each batch runs under :class:`Gate`; a capture waits until none is in flight,
   and a batch that fails half-way stops the worker (:meth:`Checkpointer.batch`);
2. **offsets**: which records the state already covers (:meth:`Checkpointer.accept`,
   :meth:`Checkpointer.done`) and which partitions changed since their last checkpoint;
3. **capture**: each changed partition's state and the offsets it covers, under the gate;
4. **write**: the captured snapshots to the checkpoints topic (a failed write keeps the
   generation numbers and is retried at the next interval);
5. **commit**: the offsets the written checkpoints cover, and only those;
6. **restore**: on assignment, the gained partitions from their checkpoints (the lost ones
   forgotten), before any of their records is processed.

The periodic timer, the revoke handler (checkpoint before a rebalance) and the shutdown
hook all go through :meth:`Checkpointer.checkpoint`."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

from detectors.state import StateError
from streams.core.errors import EXIT_SOFTWARE, EXIT_UNAVAILABLE
from streams.core.settings import TocsinSettings
from streams.core.topics import CHECKPOINTS, topic_name
from streams.pipeline.stages import CorrelationStage, SourceStage
from streams.publish.kafka_sinks import CapSink, Send
from streams.runtime import snapshot
from streams.runtime.checkpoint import CheckpointError, Gate, PartitionSnapshot, encode, read_latest
from streams.runtime.metrics import TocsinMetrics

log = logging.getLogger("tocsin.worker")

#: the snapshots of one round, each with its encoded records (key, value)
Captured = list[tuple[PartitionSnapshot, list[tuple[bytes, bytes]]]]


def die(code: int) -> None:
    """Leave at once: no final checkpoint, no commit."""
    logging.shutdown()
    os._exit(code)


class Checkpointer:
    """The checkpoint gate, capture, write, commit and restore of one worker's partitions.

    ``sources``, ``correlation`` and ``cap`` hold the state (each exports, adopts and drops
    one partition's); ``topic`` is the checkpoints topic, ``agent_topics`` the names of the
    topics whose partition numbers are this worker's units of state; ``die`` is called to
    leave when the state no longer matches the offsets (tests replace it)."""

    def __init__(self, settings: TocsinSettings, app: Any, metrics: TocsinMetrics, *,
                 sources: SourceStage, correlation: CorrelationStage, cap: CapSink,
                 topic: Any, agent_topics: set[str], send: Send,
                 die: Callable[[int], None] = die) -> None:
        self.settings = settings
        self.app = app
        self.metrics = metrics
        self.sources = sources
        self.correlation = correlation
        self.cap = cap
        self.topic = topic
        self.agent_topics = agent_topics
        self.send = send
        self.die = die
        self.gate = Gate()
        key = settings.checkpoint_key
        self.key = None if key is None else key.get_secret_value().encode()
        # the next offset the state expects per topic-partition, the partitions changed
        # since their last checkpoint, the generation of each partition's last checkpoint,
        # and the partition numbers this worker owns (None: no assignment yet, as in agent
        # tests)
        self._next: dict[tuple[str, int], int] = {}
        self._dirty: set[int] = set()
        self._gen: dict[int, int] = {}
        self._assigned: set[int] | None = None
        self._lock = asyncio.Lock()
        self._uncommitted: dict[Any, int] = {}  # TP -> offset written, not yet committed
        self._skipped: Counter[str] = Counter()  # re-delivered records skipped, per topic
        self._generation = 0  # consumer-group generation of the last assignment
        #: set when the state no longer matches the offsets: no checkpoint may follow
        self.inconsistent: str | None = None

    # -- 1. the gate ----------------------------------------------------------------------
    @asynccontextmanager
    async def batch(self, agent: str) -> AsyncIterator[None]:
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
                self.inconsistent = f"a {agent} batch was cancelled half-way"
                raise
            except Exception as exc:
                self.inconsistent = f"a {agent} batch failed: {type(exc).__name__}: {exc}"
                log.critical("%s batch failed half-way (%s: %s); this worker's state no "
                             "longer matches its offsets, so it exits (status %d) to resume "
                             "from its last checkpoint", agent, type(exc).__name__, exc,
                             EXIT_SOFTWARE, exc_info=True)
                self.die(EXIT_SOFTWARE)
                raise

    # -- 2. offsets -----------------------------------------------------------------------
    def accept(self, m: Any) -> bool:
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

    def done(self, m: Any) -> None:
        """Record ``m`` is in the state (and its outputs will be delivered with its batch)."""
        self._next[m.topic, m.partition] = m.offset + 1
        self._dirty.add(m.partition)

    def mark_dirty(self, partitions: Any) -> None:
        """``partitions`` changed without a record (an idle flush): checkpoint them."""
        self._dirty.update(partitions)

    @property
    def dirty(self) -> frozenset[int]:
        """The partitions changed since their last checkpoint."""
        return frozenset(self._dirty)

    def generation(self, p: int) -> int:
        """The generation number of partition ``p``'s last checkpoint (0: none)."""
        return self._gen.get(p, 0)

    # -- 3. capture -----------------------------------------------------------------------
    def capture(self, p: int, gen: int) -> PartitionSnapshot:
        return PartitionSnapshot(
            partition=p, gen=gen, created_at=time.time(),
            group_gen=int(getattr(self.app, "consumer_generation_id", 0) or 0),
            offsets={t: n for (t, q), n in self._next.items() if q == p},
            state=snapshot.capture({"sources": self.sources.export(p),
                                    "correlation": self.correlation.export(p),
                                    "cap_prev": self.cap.export(p)}, self._externals()))

    def _externals(self) -> dict[str, Any]:
        return snapshot.externals(self.sources, self.correlation)

    async def _capture_dirty(self) -> Captured:
        """Capture and encode every changed partition once no batch is in flight."""
        records: Captured = []
        async with self.gate.exclusive():
            for p in sorted(self._dirty):
                try:  # a partition that cannot be captured does not hold up the others
                    snap = self.capture(p, self._gen.get(p, 0) + 1)
                    records.append((snap, encode(snap, self.settings.app_id, self.key)))
                except Exception:  # a bug: keep processing, alert
                    self.metrics.checkpoints.labels("failed").inc()
                    log.exception("checkpoint of partition %d could not be captured; "
                                  "its offsets stay where they were", p)
                    continue
                self._dirty.discard(p)
        return records

    # -- 4. write -------------------------------------------------------------------------
    async def _write(self, records: Captured) -> int | None:
        """Write the captured snapshots; their size in bytes, or None if the write failed
        (the partitions are written next time, under the same generation numbers)."""
        todo = [sn.partition for sn, _ in records]
        try:
            pending: list[Awaitable[Any]] = [
                await self.send(self.topic, k, v, sn.partition)
                for sn, recs in records for k, v in recs]
            await asyncio.gather(*pending)
        except Exception as exc:
            self._dirty.update(todo)
            self.metrics.checkpoints.labels("failed").inc(len(todo))
            log.error("checkpoint of partitions %s not written (%s: %s); retried at "
                      "the next interval, offsets stay where they were", todo,
                      type(exc).__name__, exc)
            return None
        from faust.types import TP

        for sn, _ in records:
            self._gen[sn.partition] = sn.gen
            for t, n in sn.offsets.items():
                self._uncommitted[TP(t, sn.partition)] = n
        size = sum(len(v) for _, recs in records for _, v in recs)
        self.metrics.checkpoints.labels("written").inc(len(todo))
        self.metrics.checkpoint_bytes.set(size)
        return size

    # -- 5. commit ------------------------------------------------------------------------
    async def _commit(self) -> str:
        """Commit the offsets the written checkpoints cover (retried by the next round)."""
        offsets = dict(self._uncommitted)
        try:
            if await cast(Any, self.app.consumer).commit_offsets(offsets):
                for tp, n in offsets.items():
                    if self._uncommitted.get(tp) == n:
                        del self._uncommitted[tp]
                return "committed"
        except Exception as exc:  # the next checkpoint commits again
            log.warning("offsets of checkpoint not committed (%s: %s); retried",
                        type(exc).__name__, exc)
        return "not committed"

    async def checkpoint(self, *, commit: bool = True, reason: str = "interval") -> int:
        """Write a checkpoint of every partition changed since its last one (steps 3, 4),
        then commit the offsets they cover (5). Returns the number of partitions written.

        The capture waits until no batch is in flight (:class:`Gate`): every batch
        delivers its outputs before it ends, so the offsets in a checkpoint never cover
        an event whose outputs are not yet in Kafka (at-least-once)."""
        if self.inconsistent:
            log.error("no checkpoint (%s): %s", reason, self.inconsistent)
            return 0
        async with self._lock:
            started = time.perf_counter()
            records = await self._capture_dirty()
            size = 0
            if records:
                written = await self._write(records)
                if written is None:
                    return 0
                size = written
            elif not (commit and self._uncommitted):
                return 0
            committed = "not committed"
            if commit and self._uncommitted:
                committed = await self._commit()
            self.metrics.checkpoint_seconds.observe(time.perf_counter() - started)
            todo = [sn.partition for sn, _ in records]
            if records:
                log.info("checkpoint (%s): partitions %s, %d bytes, offsets %s", reason,
                         todo, size, committed)
            return len(todo)

    async def tick(self) -> None:
        """The periodic checkpoint (not while the group rebalances)."""
        if self.app.rebalancing or self._assigned is None:
            return  # the revoke handler writes one; the commit would be refused
        await self.checkpoint()

    async def final(self, *args: Any, **kwargs: Any) -> None:
        """The last checkpoint, at shutdown."""
        if self._assigned is None:
            return
        try:
            if not await self.checkpoint(reason="shutdown") and not self.inconsistent:
                log.info("checkpoint (shutdown): every partition's state is already saved")
        except Exception as exc:  # shutting down: the last periodic checkpoint stands
            log.warning("no checkpoint at shutdown (%s: %s)", type(exc).__name__, exc)

    async def on_revoked(self, *args: Any, **kwargs: Any) -> None:
        """Before the group rebalances: checkpoint and commit what this worker has
        processed, so the partitions' next owners resume exactly here (a commit the
        coordinator refuses is harmless: the owner skips what the checkpoint covers)."""
        if self._assigned is not None:
            await self.checkpoint(reason="rebalance")

    # -- 6. restore -----------------------------------------------------------------------
    def adopt(self, snap: PartitionSnapshot) -> None:
        """Take partition ``snap.partition``'s state and offsets from a checkpoint."""
        p = snap.partition
        state = snapshot.restore(snap.state, self._externals(), snap.format)
        self.sources.adopt(p, state.get("sources") or {})
        self.correlation.adopt(p, state.get("correlation"), time.monotonic())
        self.cap.adopt(state.get("cap_prev") or {})
        for t, n in snap.offsets.items():
            self._next[t, p] = n
        self._gen[p] = snap.gen

    def drop(self, p: int) -> None:
        """Forget partition ``p`` (revoked: its new owner restores it from its checkpoint)."""
        self.sources.drop(p)
        self.correlation.drop(p)
        self.cap.drop(p)
        for k in [k for k in self._next if k[1] == p]:
            del self._next[k]
        for tp in [tp for tp in self._uncommitted if tp.partition == p]:
            del self._uncommitted[tp]
        self._dirty.discard(p)
        self._gen.pop(p, None)

    async def on_assigned(self, *args: Any, **kwargs: Any) -> None:
        """Drop the partitions this worker lost; restore those it gained from their
        checkpoints before any of their records is processed (the gate stays closed
        until then).

        Kept partitions keep their state only when this worker took part in every
        rebalance since (group generation + 1); otherwise it may have been expelled
        without noticing while another worker processed them, and all are restored."""
        assigned = args[1] if len(args) > 1 else kwargs.get("assigned", ())  # (sender, tps)
        parts = {tp.partition for tp in assigned if tp.topic in self.agent_topics}
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
                self.drop(p)
            gained = sorted(parts - before)
            check_copartitioned(assigned, self.agent_topics)
            self._assigned = parts
            if gained:
                await self._restore(gained)

    async def _restore(self, gained: list[int]) -> None:
        try:
            snaps, refused, max_gen = await read_checkpoints(self.settings, gained, self.key)
        except CheckpointError as exc:
            # the gate stays closed: nothing of these partitions is processed cold
            self.inconsistent = str(exc)
            log.critical("%s; exiting (status %d) so that the orchestrator retries",
                         exc, EXIT_UNAVAILABLE)
            self.die(EXIT_UNAVAILABLE)
            raise
        for reason in refused:
            log.error("checkpoint refused: %s", reason)
        for p in gained:
            snap = snaps.get(p)
            self._gen[p] = max_gen.get(p, 0)
            if snap is None:
                self.metrics.restores.labels("none").inc()
                continue
            try:
                self.adopt(snap)
            except StateError as exc:  # a snapshot this version cannot read: start cold
                self.drop(p)
                self.metrics.restores.labels("refused").inc()
                log.error("checkpoint refused: partition %d gen %d: %s; it starts from the "
                          "checkpoint's offsets without earlier state", p, snap.gen, exc)
                for t, n in snap.offsets.items():
                    self._next[t, p] = n
                continue
            self.metrics.restores.labels("restored").inc()
            log.info("partition %d restored from checkpoint generation %d (%s), "
                     "offsets %s", p, snap.gen,
                     datetime.fromtimestamp(snap.created_at, UTC).isoformat(
                         timespec="seconds"), snap.offsets)
        if refused:
            self.metrics.restores.labels("refused").inc(len(refused))


def check_copartitioned(assigned: Any, agent_topics: set[str]) -> None:
    """Every agent topic's partition ``p`` must come to the same worker (one state per
    partition number); faust does so when their partition counts are equal."""
    have: dict[int, set[str]] = {}
    for tp in assigned:
        if tp.topic in agent_topics:
            have.setdefault(tp.partition, set()).add(tp.topic)
    split = {p: sorted(agent_topics - t) for p, t in have.items() if t != agent_topics}
    if split:
        log.error("partitions assigned without all their topics %s: the agent topics' "
                  "partition counts differ (check `tocsin topics create`); those "
                  "partitions' state is split between workers", split)


async def read_checkpoints(settings: TocsinSettings, parts: list[int], key: bytes | None
                           ) -> tuple[dict[int, PartitionSnapshot], list[str], dict[int, int]]:
    """Read the checkpoints of ``parts``, retried briefly (this runs inside the rebalance
    callback, before heartbeats resume), then :class:`CheckpointError`."""
    name = topic_name(settings, CHECKPOINTS)
    for attempt in range(3):
        try:
            return await read_latest(settings, name, parts, key)
        except Exception as exc:
            if attempt == 2:
                raise CheckpointError(
                    f"cannot read the checkpoints of partitions {parts} from {name}: "
                    f"{type(exc).__name__}: {exc}; check that the topic exists "
                    "(`tocsin topics create`) and the broker answers") from exc
            log.warning("reading checkpoints failed (%s), retrying", exc)
            await asyncio.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
