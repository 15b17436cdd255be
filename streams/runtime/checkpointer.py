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
   forgotten), before any of their records is processed (:mod:`streams.runtime.restore`).

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
from typing import Any, cast

from streams.core.errors import EXIT_SOFTWARE
from streams.core.settings import TocsinSettings
from streams.pipeline.stages import CorrelationStage, SourceStage
from streams.publish.kafka_sinks import CapSink, Send
from streams.runtime import snapshot
from streams.runtime.checkpoint import Gate, PartitionSnapshot, encode
from streams.runtime.metrics import TocsinMetrics
from streams.runtime.restore import RestoreOnAssignment
from streams.runtime.restore import check_copartitioned as check_copartitioned  # (was here)
from streams.runtime.restore import read_checkpoints as read_checkpoints  # (was here)

log = logging.getLogger("tocsin.worker")

#: the snapshots of one round, each with its encoded records (key, value)
Captured = list[tuple[PartitionSnapshot, list[tuple[bytes, bytes]]]]


def die(code: int) -> None:
    """Leave at once: no final checkpoint, no commit."""
    logging.shutdown()
    os._exit(code)


class Checkpointer(RestoreOnAssignment):
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
