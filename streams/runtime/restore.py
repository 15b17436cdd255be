"""Step 6 of the :class:`~streams.runtime.checkpointer.Checkpointer`: on assignment, the
partitions lost are forgotten and those gained restored from their checkpoints, before any
of their records is processed. Mixed into the checkpointer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from detectors.state import StateError
from streams.core.errors import EXIT_UNAVAILABLE
from streams.core.settings import TocsinSettings
from streams.core.topics import CHECKPOINTS, topic_name
from streams.pipeline.stages import CorrelationStage, SourceStage
from streams.publish.kafka_sinks import CapSink
from streams.runtime import snapshot
from streams.runtime.checkpoint import CheckpointError, Gate, PartitionSnapshot, read_latest
from streams.runtime.metrics import TocsinMetrics

log = logging.getLogger("tocsin.worker")


class RestoreOnAssignment:
    """The restore of a :class:`~streams.runtime.checkpointer.Checkpointer` (the state,
    offsets and generations it restores are the checkpointer's attributes)."""

    settings: TocsinSettings
    app: Any
    metrics: TocsinMetrics
    sources: SourceStage
    correlation: CorrelationStage
    cap: CapSink
    agent_topics: set[str]
    die: Callable[[int], None]
    gate: Gate
    key: bytes | None
    inconsistent: str | None
    _next: dict[tuple[str, int], int]
    _dirty: set[int]
    _gen: dict[int, int]
    _assigned: set[int] | None
    _uncommitted: dict[Any, int]
    _generation: int

    def _externals(self) -> dict[str, Any]:
        return snapshot.externals(self.sources, self.correlation)

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


__all__ = ["RestoreOnAssignment", "check_copartitioned", "read_checkpoints"]
