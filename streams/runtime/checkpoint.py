"""Checkpoints: a worker's per-partition state on a compacted topic, so a restarted or
rebalanced worker resumes with its baselines and open incidents instead of a cold start.

What a checkpoint of partition ``p`` holds: the detector state of source partition ``p``
(all three source topics), its de-duplication window, the reorder buffer and correlator of
anomalies partition ``p``, the earlier versions of its open warnings (for CAP references),
and the next offset of every topic-partition ``p`` that state covers. faust assigns the same
partition number of every agent topic to one worker (co-partitioning), so one partition
number is one unit of state.

Wire format: the pickled :class:`PartitionSnapshot` is cut into chunks of at most
``CHUNK_BYTES`` (Kafka's default message limit is 1 MB), each a record keyed
``<app_id>/<partition>/<slot>/<index>`` on partition ``p`` of the checkpoints topic. Two
slots alternate (``gen % 2``), so writing generation ``g`` never overwrites the chunks of
``g - 1``: a worker killed half-way through a write leaves the previous complete
generation readable even after compaction. Every chunk carries the generation, the chunk
count and the SHA-256 of the whole blob (an HMAC when ``TOCSIN_CHECKPOINT_KEY`` is set);
a reader takes the newest generation whose chunks are all there and whose digest matches.

The blob (format 2) is msgpack: the snapshot's partition, generation, offsets and
``state``, a plain versioned snapshot tree (:mod:`detectors.state`,
:mod:`streams.runtime.snapshot`) in which every object is named by a registered class name
and version, never a pickle. A checkpoint of format 1 (pickles, written before format 2)
is read once through a loader that maps the old module paths to the new ones; if its
classes no longer have the shape it was written with, it is refused with the reason and
the partition starts from its committed offsets without earlier state (docs/reliability.md).
Only Tocsin workers should write the checkpoints topic (broker ACLs; set
``TOCSIN_CHECKPOINT_KEY`` to have forged or corrupted checkpoints refused).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import pickle
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgpack

from streams.core.errors import TocsinError

log = logging.getLogger("tocsin.checkpoint")

FORMAT = 2
#: the formats this version reads (1: pickles, read once through the legacy loader)
READABLE = (1, 2)
MAGIC = b"TCK1"
CHUNK_BYTES = 512 * 1024


class CheckpointError(TocsinError):
    """A checkpoint cannot be read; the partition starts without its earlier state."""


@dataclass
class PartitionSnapshot:
    """Everything a worker holds for one partition number, and how far it covers."""

    partition: int
    gen: int
    offsets: dict[str, int]  # topic -> next offset to process
    # format 2: a snapshot tree (streams.runtime.snapshot.capture); format 1: objects
    state: Any = field(default_factory=dict)
    created_at: float = 0.0  # wall clock (seconds since the epoch)
    group_gen: int = 0  # consumer-group generation of the writer (fences stale writers)
    format: int = FORMAT


class Gate:
    """Batches run side by side; a checkpoint waits until none is in flight and holds new
    ones back while it captures the state (a shared/exclusive lock)."""

    def __init__(self) -> None:
        self._active = 0
        self._closed = False
        self._cond = asyncio.Condition()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._closed)
            self._active += 1
        try:
            yield
        finally:
            async with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._closed)
            self._closed = True
            try:
                await self._cond.wait_for(lambda: self._active == 0)
            except BaseException:  # cancelled while waiting: reopen for the batches
                self._closed = False
                self._cond.notify_all()
                raise
        try:
            yield
        finally:
            async with self._cond:
                self._closed = False
                self._cond.notify_all()


def _digest(blob: bytes, key: bytes | None) -> str:
    if key is None:
        return "sha256:" + hashlib.sha256(blob).hexdigest()
    return "hmac-sha256:" + hmac.new(key, blob, hashlib.sha256).hexdigest()


def encode(snap: PartitionSnapshot, app_id: str, key: bytes | None = None,
           chunk_bytes: int = CHUNK_BYTES) -> list[tuple[bytes, bytes]]:
    """The (key, value) records of ``snap``, in order."""
    if snap.format != FORMAT:
        raise CheckpointError(f"checkpoints are written in format {FORMAT}, not {snap.format}")
    blob = msgpack.packb({"partition": snap.partition, "gen": snap.gen,
                          "offsets": snap.offsets, "state": snap.state,
                          "created_at": snap.created_at, "group_gen": snap.group_gen},
                         use_bin_type=True)
    count = max(1, -(-len(blob) // chunk_bytes))
    slot = snap.gen % 2
    head = {"app_id": app_id, "partition": snap.partition, "gen": snap.gen,
            "group_gen": snap.group_gen, "count": count, "size": len(blob),
            "digest": _digest(blob, key), "format": snap.format}
    out = []
    for i in range(count):
        h = json.dumps({**head, "index": i}, separators=(",", ":")).encode()
        value = MAGIC + len(h).to_bytes(4, "big") + h + blob[i * chunk_bytes:(i + 1) * chunk_bytes]
        out.append((f"{app_id}/{snap.partition}/{slot}/{i}".encode(), value))
    return out


@dataclass
class _Pending:
    head: dict[str, Any]
    chunks: dict[int, bytes]
    first: int  # log position of its first chunk


@dataclass
class _Complete:
    head: dict[str, Any]
    blob: bytes
    rank: tuple[int, int]  # (consumer-group generation of the writer, log position)


def _header(value: bytes) -> tuple[dict[str, Any], bytes] | None:
    """The validated header and the chunk of one checkpoint record (None: not one)."""
    if len(value) < 8 or not value.startswith(MAGIC):
        return None
    n = int.from_bytes(value[4:8], "big")
    try:
        head = json.loads(value[8:8 + n])
    except ValueError:
        return None
    if not isinstance(head, dict):
        return None
    ints = ("partition", "gen", "index", "count", "size", "format")
    if any(type(head.get(k)) is not int or head[k] < 0 for k in ints):
        return None
    if type(head.get("group_gen", 0)) is not int:
        return None
    if not isinstance(head.get("digest"), str) or not isinstance(head.get("app_id"), str):
        return None
    if not 0 <= head["index"] < head["count"] <= 1_000_000:
        return None
    return head, value[8 + n:]


class Assembler:
    """Collects checkpoint records in log order and gives, per partition, the checkpoint
    written last by the newest consumer-group generation that is complete and intact.

    Choosing by the writer's group generation first fences a worker that lost its
    partitions without noticing (expelled from the group): its late writes carry an older
    generation. Within a generation the last complete checkpoint in the log wins. Memory:
    the best complete checkpoint per partition and the ones being assembled."""

    def __init__(self, app_id: str, key: bytes | None = None) -> None:
        self.app_id = app_id
        self.key = key
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._best: dict[int, _Complete] = {}
        self.max_gen: dict[int, int] = {}  # highest generation number seen per partition
        self._pos = 0
        self.rejected: list[str] = []

    def add(self, value: bytes | None) -> None:
        self._pos += 1
        parsed = None if not value else _header(value)
        if parsed is None:
            self.rejected.append("not a checkpoint record")
            return
        head, chunk = parsed
        if head["app_id"] != self.app_id:
            return  # another application sharing the topic
        part, gen = head["partition"], head["gen"]
        self.max_gen[part] = max(self.max_gen.get(part, 0), gen)
        entry = self._pending.get((part, gen))
        if entry is None or (entry.head["digest"], entry.head["count"]) != (
                head["digest"], head["count"]):
            # first chunk of this generation, or a later writer reused the number (one
            # that took over after a crash half-way through that generation, or a retry
            # of a failed write): the later writer's chunks win
            entry = self._pending[part, gen] = _Pending(head, {}, self._pos)
        entry.chunks[head["index"]] = chunk
        if len(entry.chunks) < head["count"]:
            return
        del self._pending[part, gen]
        blob = b"".join(entry.chunks[i] for i in range(head["count"]))
        if not hmac.compare_digest(_digest(blob, self.key), head["digest"]):
            self.rejected.append(
                f"partition {part} gen {gen}: digest mismatch (corrupt, or written with "
                "another TOCSIN_CHECKPOINT_KEY)")
            return
        # anything of this partition begun before it is superseded
        for k in [k for k, e in self._pending.items() if k[0] == part and e.first < entry.first]:
            del self._pending[k]
        rank = (int(head.get("group_gen", 0)), self._pos)
        best = self._best.get(part)
        if best is not None and rank < best.rank:
            self.rejected.append(
                f"partition {part} gen {gen}: written in group generation {rank[0]} after "
                f"generation {best.rank[0]} had taken over (a worker that had lost the "
                "partition)")
            return
        self._best[part] = _Complete(head, blob, rank)

    def latest(self, partition: int) -> PartitionSnapshot | None:
        """The checkpoint of ``partition`` to restore (None: none is usable; the reasons
        are in ``rejected``)."""
        for (p, gen), e in self._pending.items():
            if p == partition:
                self.rejected.append(f"partition {p} gen {gen}: incomplete ({len(e.chunks)} "
                                     f"of {e.head['count']} chunks; a write cut short)")
        best = self._best.get(partition)
        if best is None:
            return None
        gen = best.head["gen"]
        where = f"partition {partition} gen {gen}"
        if best.head["format"] not in READABLE:
            self.rejected.append(f"{where}: format {best.head['format']} (this version reads "
                                 f"{', '.join(map(str, READABLE))}): written by a newer "
                                 "Tocsin? the partition starts without earlier state")
            return None
        try:
            snap = (_decode_v2(best.blob) if best.head["format"] == 2
                    else _LegacyUnpickler(io.BytesIO(best.blob)).load())
        except Exception as exc:  # digest checked: a version mismatch, not corruption
            self.rejected.append(f"{where}: format {best.head['format']} cannot be loaded by "
                                 f"this version ({type(exc).__name__}: {exc})")
            return None
        if (not isinstance(snap, PartitionSnapshot) or snap.partition != partition
                or snap.gen != gen):
            self.rejected.append(f"{where}: the header does not match the checkpoint it "
                                 "carries")
            return None
        snap.format = best.head["format"]
        return snap


def _decode_v2(blob: bytes) -> PartitionSnapshot:
    doc = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    if not isinstance(doc, dict):
        raise CheckpointError("not a checkpoint mapping")
    return PartitionSnapshot(
        partition=int(doc["partition"]), gen=int(doc["gen"]),
        offsets={str(t): int(n) for t, n in dict(doc["offsets"]).items()},
        state=doc["state"], created_at=float(doc.get("created_at", 0.0)),
        group_gen=int(doc.get("group_gen", 0)), format=2)


#: where format-1 checkpoints' classes lived before issue 17's package move
LEGACY_MODULES = {
    "streams.checkpoint": "streams.runtime.checkpoint",
    "streams.detection": "streams.pipeline.detection",
    "streams.pipeline": "streams.pipeline.stages",
    "streams.ingest": "streams.ingest.ingestor",
    **{f"detectors.{m}": f"detectors.signals.{m}" for m in (
        "sensor", "shift", "robust", "counts", "rates", "buckets", "calibration")},
    **{f"detectors.{m}": f"detectors.fusion.{m}" for m in (
        "correlation", "templates", "feedback", "reorder")},
}
LEGACY_CLASSES = {
    ("detectors.correlation", "Finding"): ("detectors.base", "Finding"),
    ("detectors.counts", "_KeyState"): ("detectors.signals.count_keys", "_KeyState"),
    ("detectors.rates", "_RateState"): ("detectors.signals.rate_keys", "_RateState"),
    **{("detectors.sensor", name): ("detectors.signals.sensor_components", name) for name in (
        "RobustLevel", "EwmaVariance", "PageHinkley", "SeasonalBaseline")},
    ("detectors.shift", "FaultScreen"): ("detectors.signals.fault_screen", "FaultScreen"),
    # feedback split into decisions, history and bar; detection's sensor path split out
    **{("detectors.feedback", name): ("detectors.fusion.history", name) for name in (
        "WarningHistory", "_Warning", "Entry")},
    **{("detectors.feedback", name): ("detectors.fusion.bar", name) for name in (
        "FeedbackBar", "_Bar")},
    ("detectors.feedback", "Decision"): ("detectors.fusion.decisions", "Decision"),
    ("streams.detection", "_SensorState"): ("streams.pipeline.sensor_path", "_SensorState"),
}


class _LegacyUnpickler(pickle.Unpickler):
    """Reads a format-1 checkpoint (our own topic, digest checked): Tocsin's and the
    standard library's classes only, at their current paths."""

    def find_class(self, module: str, name: str) -> Any:
        module, name = LEGACY_CLASSES.get((module, name), (module, name))
        module = LEGACY_MODULES.get(module, module)
        if not (module.split(".")[0] in ("streams", "detectors")
                or module in ("collections", "array", "builtins", "copyreg", "datetime")):
            raise pickle.UnpicklingError(f"{module}.{name} is not a Tocsin class")
        return super().find_class(module, name)


async def read_latest(settings: Any, topic: str, partitions: Iterable[int],
                      key: bytes | None = None) -> tuple[dict[int, PartitionSnapshot],
                                                         list[str], dict[int, int]]:
    """Read partitions ``partitions`` of the checkpoints topic to their end: the snapshot
    to restore of each (missing: none written yet, or none usable), the reasons any were
    refused, and the highest generation number seen per partition."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    parts = sorted(set(partitions))
    if not parts:
        return {}, [], {}
    consumer = AIOKafkaConsumer(**settings.kafka_client_kwargs(), enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * CHUNK_BYTES)
    await consumer.start()
    asm = Assembler(settings.app_id, key)
    try:
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends: dict[Any, int] = await consumer.end_offsets(tps)
        todo = set()
        for tp, end in ends.items():
            if end > 0 and (await consumer.position(tp)) < end:
                todo.add(tp)
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000, max_records=1000)
            for tp, msgs in batch.items():
                for msg in msgs:
                    if msg.offset < ends[tp]:
                        asm.add(msg.value)
            for tp in list(todo):
                if (await consumer.position(tp)) >= ends[tp]:
                    todo.discard(tp)
    finally:
        await consumer.stop()
    found = {p: s for p in parts if (s := asm.latest(p)) is not None}
    return found, asm.rejected, asm.max_gen


__all__ = ["Assembler", "CheckpointError", "Gate", "PartitionSnapshot", "encode",
           "read_latest"]
