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

from streams.checkpoint import Assembler, Gate, PartitionSnapshot, encode
from streams.regions import RegionRegistry
from tests.test_agents import _OFFSETS, T0, drive, make_worker, reading, topic_of


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
    blob = encode(a._capture(1), a.settings.app_id)
    asm = Assembler(a.settings.app_id)
    feed(asm, blob)
    restored = asm.latest(1)
    assert restored is not None and restored.offsets == {"tocsin.env.readings": 120}

    b, b_sent = make_worker(tmp_path / "b", registry)
    b._adopt(restored)
    _OFFSETS[id(b), "ingest_env"] = 100  # re-delivered from before the checkpoint
    asyncio.run(drive(b, "ingest_env", readings[100:], b"harbour"))
    c, c_sent = make_worker(tmp_path / "c", registry)
    asyncio.run(drive(c, "ingest_env", readings[:120], b"harbour"))
    n = len(c_sent)
    asyncio.run(drive(c, "ingest_env", readings[120:], b"harbour"))

    assert b.metrics.records_skipped.labels("tocsin.env.readings")._value.get() == 20
    found = [v for k, v, _ in topic_of(b_sent, "anomalies") if k is not None]
    assert any(b'"r-150"' in v for v in found), "the jump at reading 150 must be found"
    # the same anomalies (batches, and so the watermark markers between them, differ)
    assert found == [v for k, v, _ in topic_of(c_sent[n:], "anomalies") if k is not None]


def test_cold_partition_state_would_differ(tmp_path: Path, registry: RegionRegistry) -> None:
    """Control for the test above: without the checkpoint, B (cold) does not produce C's
    outputs for the same records, so the comparison above can fail."""
    from datetime import timedelta

    readings = [reading(i, 20.0 + (i % 5) * 0.2 + (30.0 if i in (150, 151) else 0.0),
                        T0 + timedelta(minutes=15 * i)) for i in range(200)]
    b, b_sent = make_worker(tmp_path / "b", registry)
    _OFFSETS[id(b), "ingest_env"] = 120
    asyncio.run(drive(b, "ingest_env", readings[120:], b"harbour"))
    c, c_sent = make_worker(tmp_path / "c", registry)
    asyncio.run(drive(c, "ingest_env", readings[:120], b"harbour"))
    n = len(c_sent)
    asyncio.run(drive(c, "ingest_env", readings[120:], b"harbour"))
    keyed = lambda sent: [v for k, v, _ in topic_of(sent, "anomalies")  # noqa: E731
                          if k is not None]
    assert keyed(b_sent) != keyed(c_sent[n:])


@pytest.mark.parametrize("n", [0, 1])
def test_capture_of_an_untouched_partition_is_empty(
        tmp_path: Path, registry: RegionRegistry, n: int) -> None:
    w, _ = make_worker(tmp_path, registry)
    sn = w._capture(n)
    assert sn.offsets == {} and sn.state["sources"]["detection"] is None
    assert sn.state["correlation"] is None and sn.gen == 1
