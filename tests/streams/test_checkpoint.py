"""Checkpoints (streams/checkpoint.py) without a broker: the chunked wire format, torn
writes, signing, the shared/exclusive gate, and a worker's state carried from one worker
to another through a checkpoint. The kill -9 tests in test_faults.py run the same against
a real broker."""

from __future__ import annotations

import asyncio
import pickle
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.regions import RegionRegistry
from streams.runtime.checkpoint import Assembler, Gate, PartitionSnapshot, encode
from tests.streams.test_agents import _OFFSETS, T0, drive, make_worker, reading, topic_of


def snap(gen: int, partition: int = 2, size: int = 3000) -> PartitionSnapshot:
    rnd = random.Random(gen)
    return PartitionSnapshot(partition=partition, gen=gen,
                             offsets={"tocsin.env.readings": 100 * gen},
                             state={"blob": rnd.randbytes(size)})


def feed(asm: Assembler, records: list[tuple[bytes, bytes]]) -> None:
    for _, value in records:
        asm.add(value)


def test_round_trip_in_chunks_with_slot_keys() -> None:
    records = encode(snap(3), "app", chunk_bytes=1000)
    assert len(records) >= 3  # cut into chunks under the limit
    assert all(len(v) < 1200 for _, v in records)
    assert [k for k, _ in records][:2] == [b"app/2/1/0", b"app/2/1/1"]  # gen 3 -> slot 1
    asm = Assembler("app")
    feed(asm, records)
    got = asm.latest(2)
    assert got is not None and got.gen == 3 and got.state == snap(3).state
    assert asm.latest(0) is None


def test_a_torn_write_falls_back_to_the_previous_generation() -> None:
    asm = Assembler("app")
    feed(asm, encode(snap(4), "app", chunk_bytes=1000))
    feed(asm, encode(snap(5), "app", chunk_bytes=1000)[:-1])  # killed before the last chunk
    got = asm.latest(2)
    assert got is not None and got.gen == 4
    assert any("gen 5: incomplete" in r for r in asm.rejected)


def test_a_later_writer_reusing_a_generation_number_wins() -> None:
    """A worker that took over after another died half-way through generation 6 writes its
    own generation 6: its chunks, not a mix, are read."""
    asm = Assembler("app")
    feed(asm, encode(snap(6, size=5000), "app", chunk_bytes=1000)[:2])  # torn
    mine = PartitionSnapshot(partition=2, gen=6, offsets={"t": 7}, state={"mine": True})
    feed(asm, encode(mine, "app", chunk_bytes=1000))
    got = asm.latest(2)
    assert got is not None and got.state == {"mine": True}


def test_signed_checkpoints_refuse_another_key_and_corruption() -> None:
    records = encode(snap(2), "app", key=b"k1")
    for key in (b"k2", None):
        asm = Assembler("app", key)
        feed(asm, records)
        assert asm.latest(2) is None and "digest mismatch" in asm.rejected[-1]
    asm = Assembler("app", b"k1")
    feed(asm, records)
    assert asm.latest(2) is not None
    # a flipped bit in the newest generation: refused, the one before is read
    asm = Assembler("app")
    feed(asm, encode(snap(1), "app"))
    (_, v), = encode(snap(2), "app")
    asm.add(v[:-1] + bytes([v[-1] ^ 1]))
    got = asm.latest(2)
    assert got is not None and got.gen == 1 and "gen 2: digest mismatch" in asm.rejected[-1]


def test_other_applications_and_junk_are_ignored() -> None:
    asm = Assembler("mine")
    feed(asm, encode(snap(9), "theirs"))
    asm.add(b"junk")
    asm.add(None)
    assert asm.latest(2) is None
    assert asm.rejected == ["not a checkpoint record", "not a checkpoint record"]


def test_an_unloadable_pickle_is_refused_with_the_reason() -> None:
    blob = pickle.dumps(snap(1)).replace(b"PartitionSnapshot", b"PartitionSnapshoX")
    head = encode(snap(1), "app")[0][1]
    # rebuild a record around the damaged pickle with a matching digest
    import hashlib
    import json

    n = int.from_bytes(head[4:8], "big")
    h = json.loads(head[8:8 + n])
    h.update(count=1, size=len(blob), digest="sha256:" + hashlib.sha256(blob).hexdigest())
    hb = json.dumps(h).encode()
    asm = Assembler("app")
    asm.add(b"TCK1" + len(hb).to_bytes(4, "big") + hb + blob)
    assert asm.latest(2) is None
    assert "cannot be loaded by this version" in asm.rejected[-1]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_property_the_newest_complete_generation_is_read(data: st.DataObject) -> None:
    gens = data.draw(st.integers(1, 5))
    asm = Assembler("app")
    complete = []
    for g in range(1, gens + 1):
        records = encode(snap(g, size=data.draw(st.integers(1, 4000))), "app",
                         chunk_bytes=700)
        keep = data.draw(st.lists(st.booleans(), min_size=len(records),
                                  max_size=len(records)))
        kept = [r for r, k in zip(records, keep, strict=True) if k]
        feed(asm, data.draw(st.permutations(kept)))
        if all(keep):
            complete.append(g)
    got = asm.latest(2)
    if complete:
        assert got is not None and got.gen == max(complete)
        assert got.state == snap(got.gen, size=len(got.state["blob"])).state
    else:
        assert got is None


def test_gate_waits_for_batches_in_flight_and_holds_new_ones() -> None:
    async def main() -> list[str]:
        gate, order = Gate(), []
        release = asyncio.Event()

        async def batch(name: str, wait: bool) -> None:
            async with gate.batch():
                order.append(f"{name} start")
                if wait:
                    await release.wait()
                order.append(f"{name} end")

        async def checkpoint() -> None:
            async with gate.exclusive():
                order.append("checkpoint")

        a = asyncio.create_task(batch("a", True))
        await asyncio.sleep(0)
        c = asyncio.create_task(checkpoint())
        await asyncio.sleep(0.01)
        b = asyncio.create_task(batch("b", False))
        await asyncio.sleep(0.01)
        assert order == ["a start"]  # the checkpoint waits for a; b waits for it
        release.set()
        await asyncio.gather(a, b, c)
        return order

    assert asyncio.run(main()) == ["a start", "a end", "checkpoint", "b start", "b end"]


def test_state_carried_through_a_checkpoint_continues_exactly(
        tmp_path: Path, registry: RegionRegistry) -> None:
    """Worker A processes the first part of a sensor's readings and checkpoints partition 1;
    worker B adopts that checkpoint and processes the rest. B's outputs are exactly those
    of worker C, which processed everything uninterrupted; records B is handed again below
    the checkpoint's offsets are skipped, not processed twice."""
    from datetime import timedelta

    readings = [reading(i, 20.0 + (i % 5) * 0.2 + (30.0 if i in (150, 151) else 0.0),
                        T0 + timedelta(minutes=15 * i)) for i in range(200)]
    a, _ = make_worker(tmp_path / "a", registry)
    asyncio.run(drive(a, "ingest_env", readings[:120], b"harbour"))
    blob = encode(a.checkpointer.capture(1, 1), a.settings.app_id)
    asm = Assembler(a.settings.app_id)
    feed(asm, blob)
    restored = asm.latest(1)
    assert restored is not None and restored.offsets == {"tocsin.env.readings": 120}

    b, b_sent = make_worker(tmp_path / "b", registry)
    b.checkpointer.adopt(restored)
    _OFFSETS[id(b), "ingest_env"] = 100  # re-delivered from before the checkpoint
    asyncio.run(drive(b, "ingest_env", readings[100:], b"harbour"))

    assert b.metrics.records_skipped.labels("tocsin.env.readings")._value.get() == 20
    found = [v for k, v, _ in topic_of(b_sent, "anomalies") if k is not None]
    assert any(b'"r-150"' in v for v in found), "the jump at reading 150 must be found"
    # the same anomalies (batches, and so the watermark markers between them, differ)
    assert found == _uninterrupted(tmp_path, registry, readings)


def test_cold_partition_state_would_differ(tmp_path: Path, registry: RegionRegistry) -> None:
    """Control for the test above: without the checkpoint, B (cold) does not produce C's
    outputs for the same records, so the comparison above can fail."""

    readings = _readings()
    b, b_sent = make_worker(tmp_path / "b", registry)
    _OFFSETS[id(b), "ingest_env"] = 120
    asyncio.run(drive(b, "ingest_env", readings[120:], b"harbour"))
    cold = [v for k, v, _ in topic_of(b_sent, "anomalies") if k is not None]
    assert cold != _uninterrupted(tmp_path, registry, readings)


@pytest.mark.parametrize("n", [0, 1])
def test_capture_of_an_untouched_partition_is_empty(
        tmp_path: Path, registry: RegionRegistry, n: int) -> None:
    w, _ = make_worker(tmp_path, registry)
    sn = w.checkpointer.capture(n, 1)
    assert sn.offsets == {} and sn.state["sources"]["detection"] is None
    assert sn.state["correlation"] is None and sn.gen == 1


def test_a_stale_writer_from_an_older_group_generation_loses() -> None:
    """A worker expelled from the group without noticing writes a checkpoint after the
    partition's new owner (a newer group generation) has: the new owner's is read."""
    asm = Assembler("app")
    new_owner = PartitionSnapshot(partition=2, gen=8, offsets={"t": 900}, group_gen=5)
    zombie = PartitionSnapshot(partition=2, gen=9, offsets={"t": 700}, group_gen=4)
    feed(asm, encode(new_owner, "app"))
    feed(asm, encode(zombie, "app"))
    got = asm.latest(2)
    assert got is not None and got.offsets == {"t": 900}
    assert "group generation 4" in asm.rejected[-1]


def test_a_newer_writer_with_a_lower_generation_number_wins() -> None:
    """Generation numbers only group chunks: a partition started cold (an upgrade that
    refused the old state) writes gen 1 after gen 500; the later checkpoint is read."""
    asm = Assembler("app")
    feed(asm, encode(PartitionSnapshot(partition=2, gen=500, offsets={"t": 1}), "app"))
    feed(asm, encode(PartitionSnapshot(partition=2, gen=1, offsets={"t": 2}), "app"))
    got = asm.latest(2)
    assert got is not None and got.offsets == {"t": 2} and asm.max_gen[2] == 500


def test_headers_are_validated_and_must_match_the_checkpoint() -> None:
    import json

    (_, v), = encode(snap(3), "app")
    n = int.from_bytes(v[4:8], "big")
    head = json.loads(v[8:8 + n])

    def with_head(h: dict[str, object]) -> bytes:
        hb = json.dumps(h).encode()
        return b"TCK1" + len(hb).to_bytes(4, "big") + hb + v[8 + n:]

    asm = Assembler("app")
    for broken in ({k: x for k, x in head.items() if k != "count"},
                   {**head, "digest": 5}, {**head, "index": 1}, {**head, "gen": "3"}):
        asm.add(with_head(broken))  # never raises
    assert asm.rejected == ["not a checkpoint record"] * 4 and asm.latest(2) is None
    # an old checkpoint re-sent under a newer generation number is refused
    asm.add(with_head({**head, "gen": 7}))
    assert asm.latest(2) is None and "does not match" in asm.rejected[-1]


def test_memory_holds_the_best_checkpoint_and_the_ones_being_assembled() -> None:
    asm = Assembler("app")
    for g in range(1, 60):
        records = encode(snap(g, size=3000), "app", chunk_bytes=1000)
        feed(asm, records if g % 3 else records[:-1])  # every third one torn
    assert len(asm._best) == 1 and len(asm._pending) <= 1
    got = asm.latest(2)
    assert got is not None and got.gen == 59


def test_gate_reopens_when_a_waiting_checkpoint_is_cancelled() -> None:
    async def main() -> bool:
        gate = Gate()
        release = asyncio.Event()

        async def batch() -> None:
            async with gate.batch():
                await release.wait()

        b = asyncio.create_task(batch())
        await asyncio.sleep(0)

        async def checkpoint() -> None:
            async with gate.exclusive():
                pass

        c = asyncio.create_task(checkpoint())
        await asyncio.sleep(0.01)
        c.cancel()
        await asyncio.sleep(0.01)
        release.set()
        await b
        # a new batch gets in: the gate did not stay closed
        await asyncio.wait_for(batch_once(gate), 1.0)
        return c.cancelled()

    async def batch_once(gate: Gate) -> None:
        async with gate.batch():
            pass

    assert asyncio.run(main())


def test_faust_acknowledgements_do_not_accumulate(
        tmp_path: Path, registry: RegionRegistry) -> None:
    """faust records every acknowledged offset and trims the record only in its own
    commit, which checkpointing turns off: the commit timer must still trim it (else a
    worker grows ~80 bytes per record until it is killed for memory)."""
    from faust.types import TP, Message

    w, _ = make_worker(tmp_path, registry)
    consumer = w.app.consumer
    tp = TP("tocsin.env.readings", 0)
    w.app.topics._acking_topics.add(tp.topic)
    for i in range(1000):
        m = Message(topic=tp.topic, partition=0, offset=i, timestamp=0.0, timestamp_type=0,
                    headers=[], key=None, value=b"", checksum=None, tp=tp)
        consumer.track_message(m)
        consumer.ack(m)
    assert len(consumer._acked[tp]) == 1000  # recorded by faust
    assert asyncio.run(consumer.commit()) is False  # commits nothing ...
    assert not consumer._acked[tp] and not consumer._acked_index[tp]  # ... and trims


def test_a_batch_failing_half_way_stops_the_worker_and_any_later_checkpoint(
        tmp_path: Path, registry: RegionRegistry) -> None:
    """After a batch failed half-way, the state covers records whose outputs were not all
    delivered: the worker must exit (status 70) and write no checkpoint, so that its
    replacement resumes from the last good one."""
    w, _ = make_worker(tmp_path, registry)
    died: list[int] = []
    w.checkpointer.die = died.append
    w.checkpointer.mark_dirty([1])

    async def main() -> int:
        with pytest.raises(RuntimeError):
            async with w.checkpointer.batch("ingest.env"):
                raise RuntimeError("send failed")
        return await w.checkpointer.checkpoint()

    assert asyncio.run(main()) == 0
    assert died == [70] and "send failed" in (w.checkpointer.inconsistent or "")


def test_a_failed_write_keeps_the_generation_number(
        tmp_path: Path, registry: RegionRegistry) -> None:
    """A checkpoint whose write fails is retried under the same generation number (the
    same slot), so the last good generation in the other slot is never overwritten."""
    w, sent = make_worker(tmp_path, registry)
    asyncio.run(drive(w, "ingest_env", [reading(i, 20.0, T0) for i in range(3)], b"harbour"))
    real_send = w._send

    async def failing(*args: object, **kwargs: object) -> object:
        raise OSError("broker gone")

    w._send = failing  # type: ignore[method-assign,assignment]
    assert asyncio.run(w.checkpointer.checkpoint(commit=False)) == 0
    assert w.checkpointer.generation(1) == 0 and 1 in w.checkpointer.dirty
    w._send = real_send  # type: ignore[method-assign]
    assert asyncio.run(w.checkpointer.checkpoint(commit=False)) == 1
    keys = [k for name, (k, _, _) in sent if name.endswith("checkpoints")]
    assert keys and all(k.split(b"/")[2] == b"1" for k in keys)  # gen 1 -> slot 1
    assert w.checkpointer.generation(1) == 1


def _uninterrupted(tmp_path: Path, registry: RegionRegistry, readings: list[bytes]
                   ) -> list[bytes]:
    """The keyed anomalies a worker that saw every reading sends after the 120th."""
    c, c_sent = make_worker(tmp_path / "c", registry)
    asyncio.run(drive(c, "ingest_env", readings[:120], b"harbour"))
    n = len(c_sent)
    asyncio.run(drive(c, "ingest_env", readings[120:], b"harbour"))
    return [v for k, v, _ in topic_of(c_sent[n:], "anomalies") if k is not None]


def _readings() -> list[bytes]:
    from datetime import timedelta

    return [reading(i, 20.0 + (i % 5) * 0.2 + (30.0 if i in (150, 151) else 0.0),
                    T0 + timedelta(minutes=15 * i)) for i in range(200)]


def test_checkpoints_are_snapshots_not_pickles(tmp_path: Path, registry: RegionRegistry
                                               ) -> None:
    """Format 2: the blob is msgpack of plain values naming classes by registered name; it
    holds no pickle opcode stream and no module path."""
    import msgpack

    a, _ = make_worker(tmp_path / "a", registry)
    asyncio.run(drive(a, "ingest_env", _readings()[:120], b"harbour"))
    records = encode(a.checkpointer.capture(1, 1), a.settings.app_id)
    blob = b"".join(v[8 + int.from_bytes(v[4:8], "big"):] for _, v in records)
    doc = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    assert doc["partition"] == 1 and doc["offsets"] == {"tocsin.env.readings": 120}
    assert b"streams." not in blob and b"detectors." not in blob
    assert doc["state"]["v"]["sources"]["detection"]["c"] == "detection"
    # attribute names are written once per shape, not once per series
    shapes = doc["state"]["shapes"]
    assert shapes and all(isinstance(n, str) for keys in shapes for n in keys)
    assert len({tuple(k) for k in shapes}) == len(shapes)


def test_a_format_1_checkpoint_from_before_snapshots_is_restored(
        tmp_path: Path, registry: RegionRegistry) -> None:
    """tests/data/checkpoint-format1.json was written by Tocsin before issue 17 (pickled,
    old module paths) after the first 120 readings below. This version reads it through the
    legacy loader, and the worker continues exactly as one that saw every reading."""
    import base64
    import json

    fixture = json.loads((Path(__file__).parents[1] / "data" / "checkpoint-format1.json")
                         .read_text())
    asm = Assembler(fixture["app_id"])
    feed(asm, [(base64.b64decode(k), base64.b64decode(v)) for k, v in fixture["records"]])
    restored = asm.latest(1)
    assert restored is not None, asm.rejected
    assert restored.format == 1 and restored.offsets == {"tocsin.env.readings": 120}
    readings = _readings()
    b, b_sent = make_worker(tmp_path / "b", registry)
    b.checkpointer.adopt(restored)
    _OFFSETS[id(b), "ingest_env"] = 120
    asyncio.run(drive(b, "ingest_env", readings[120:], b"harbour"))
    found = [v for k, v, _ in topic_of(b_sent, "anomalies") if k is not None]
    assert any(b'"r-150"' in v for v in found)
    assert found == _uninterrupted(tmp_path, registry, readings)
    # the next checkpoint of the restored state is written in the current format
    again = Assembler(b.settings.app_id)
    feed(again, encode(b.checkpointer.capture(1, 2), b.settings.app_id))
    latest = again.latest(1)
    assert latest is not None and latest.format == 2


def test_a_snapshot_this_version_cannot_read_starts_the_partition_cold(
        tmp_path: Path, registry: RegionRegistry) -> None:
    """A snapshot naming a class version newer than this worker's is refused with the
    reason; the worker keeps running and starts the partition without earlier state."""
    from detectors.state import StateError

    a, _ = make_worker(tmp_path / "a", registry)
    asyncio.run(drive(a, "ingest_env", _readings()[:120], b"harbour"))
    snap = a.checkpointer.capture(1, 1)
    snap.state["v"]["sources"]["detection"]["n"] = 99
    b, _ = make_worker(tmp_path / "b", registry)
    with pytest.raises(StateError, match=r"version 99; this version of Tocsin reads up to \d"):
        b.checkpointer.adopt(snap)


def test_a_detection_snapshot_from_before_station_health_is_upgraded(
        tmp_path: Path, registry: RegionRegistry) -> None:
    """Version 1 of ``detection`` had no station health: it restores with an empty one,
    the rest of its state intact."""
    a, _ = make_worker(tmp_path / "a", registry)
    asyncio.run(drive(a, "ingest_env", _readings()[:120], b"harbour"))
    det = a.sources.export(1)["detection"]
    assert det is not None and len(det.health) > 0  # type: ignore[attr-defined]
    n_series = det.n_series  # type: ignore[attr-defined]
    del det.health  # type: ignore[attr-defined]
    snap = a.checkpointer.capture(1, 1)
    snap.state["v"]["sources"]["detection"]["n"] = 1
    b, _ = make_worker(tmp_path / "b", registry)
    b.checkpointer.adopt(snap)
    got = b.sources.export(1)["detection"]
    assert got.n_series == n_series and len(got.health) == 0  # type: ignore[attr-defined]


def test_earlier_cap_versions_survive_a_snapshot() -> None:
    """The CAP sink's earlier versions (warnings by id and version) come back as equal
    wire records, keyed by their integer versions."""
    from datetime import UTC, datetime

    from streams.core.schemas import Warning
    from streams.runtime import snapshot

    t = datetime(2026, 1, 1, tzinfo=UTC)
    w = Warning(warning_id="tw-r1-x", version=1, status="new", region="r1",
                scenario="pollution", severity="Minor", urgency="Immediate",
                certainty="Possible", score=7.0, departments=["a", "b"], first_seen=t,
                last_seen=t, evidence=[], explanation="e")
    prev = {"tw-r1-x": {1: w, 2: w.model_copy(update={"version": 2, "status": "update"})}}
    back = snapshot.restore(snapshot.capture({"cap_prev": prev}, {}), {})
    assert back["cap_prev"] == prev
