"""A real client nobody here wrote: kcat (the Debian package, librdkafka) produces a replay
file's records to the source topics, keyed as ``tocsin replay`` keys them, and reads the
warnings back; the live worker's warnings equal the in-process replay's (the contract in
docs/architecture.md). :func:`produce` and :func:`consume` hold the kcat command lines a
data engineer would type."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.core.schemas import DeadLetter, Warning
from streams.core.settings import TocsinSettings
from streams.core.topics import DEADLETTER, SOURCE_TOPICS, WARNINGS, create_topics, topic_name
from streams.evaluation.replay_score import read_replay
from streams.pipeline.stages import partition_for
from streams.tools.broker import EmbeddedBroker, free_port
from streams.tools.demo import start_worker, stop_process, wait_drained
from streams.tools.replay import bad_line_record
from tests.conftest import docker_answers
from tests.librdkafka_shim import librdkafka_shim, without_response_tags
from tests.live import Scenario, assert_same_incidents, wait_for_warnings
from tests.services import ensure_binary

pytestmark = pytest.mark.integration

#: key and value separator in kcat's input files: JSON text escapes control characters, so
#: no record (and no region name) holds a raw tab
SEP = b"\t"
#: Kafka's default partitioner (murmur2, as the Java client, aiokafka and the replay's
#: ``partition_for``). librdkafka's own default (consistent_random, CRC32) puts regions on
#: other partitions than the replay reads them from; measured with it: seven warning ids
#: differed between the worker and the replay
MURMUR2 = ["-X", "topic.partitioner=murmur2_random"]
#: replay lines `tocsin replay` sends to the dead-letter topic, not to a source topic
BAD_LINES = [b"not json at all", b'{"source": "radio", "region": "harbour"}']


@pytest.fixture(scope="module")
def kcat() -> str:
    """kcat's path; the Debian package is installed when it is missing."""
    return ensure_binary("kcat")


@pytest.fixture(scope="module")
def kafka_bootstrap(kafka_bootstrap: str) -> Iterator[str]:
    """A broker kcat can talk to: the external or testcontainers Kafka as it is; else an
    embedded Tansu behind :mod:`tests.librdkafka_shim` (it advertises the shim's port, so
    every client, the worker's too, goes through it)."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or docker_answers():
        yield kafka_bootstrap
        return
    port = free_port()
    with EmbeddedBroker(advertised_port=port) as broker, librdkafka_shim(port, broker.port):
        yield f"127.0.0.1:{port}"


def kcat_inputs(scenario: Scenario, folder: Path) -> dict[str, Path]:
    """kcat's input files for ``scenario``'s replay file with :data:`BAD_LINES` appended:
    topic (unprefixed) -> file of ``key<TAB>value`` lines (a value alone: no key), each
    line going where ``tocsin replay`` sends it."""
    events = folder / "events.jsonl"
    events.write_bytes(scenario.events.read_bytes().rstrip(b"\n") + b"\n"
                       + b"\n".join(BAD_LINES) + b"\n")
    out: dict[str, list[bytes]] = {t: [] for t in (*SOURCE_TOPICS.values(), DEADLETTER)}
    for ln in read_replay(events):
        if ln.source is None:
            out[DEADLETTER].append(bad_line_record(ln, str(events)))
            continue
        assert SEP not in ln.raw and SEP not in (ln.key or b""), ln.lineno
        out[SOURCE_TOPICS[ln.source]].append(ln.raw if ln.key is None
                                             else ln.key + SEP + ln.raw)
    files = {}
    for topic, lines in out.items():
        files[topic] = folder / f"{topic}.txt"
        files[topic].write_bytes(b"".join(x + b"\n" for x in lines))
    return files


def produce(kcat: str, s: TocsinSettings, topic: str, path: Path) -> None:
    """``kcat -P``: one message per line of ``path``, keyed (and partitioned) by the text
    before the first tab; the dead-letter topic's records have no key."""
    keyed = ["-K", SEP.decode(), *MURMUR2] if topic != DEADLETTER else []
    subprocess.run([kcat, "-P", "-b", s.broker, "-t", topic_name(s, topic), *keyed,
                    "-l", str(path)], check=True, capture_output=True, timeout=120)


def consume(kcat: str, s: TocsinSettings, topic: str) -> list[dict[str, Any]]:
    """``kcat -C -J``: every message of the topic, from the beginning to its end, each as
    kcat's JSON envelope (topic, partition, offset, key, payload ...)."""
    proc = subprocess.run([kcat, "-C", "-b", s.broker, "-t", topic_name(s, topic),
                           "-o", "beginning", "-e", "-J", "-q"],
                          check=True, capture_output=True, timeout=120)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def warnings_of(records: list[dict[str, Any]]) -> list[Warning]:
    return [Warning.model_validate_json(r["payload"]) for r in records]


def test_kcat_feeds_a_worker_and_reads_what_the_replay_publishes(
    kcat: str, isolated_settings: TocsinSettings, scenario: Scenario, tmp_path: Path
) -> None:
    s = isolated_settings
    create_topics(s)
    files = kcat_inputs(scenario, tmp_path)
    worker = start_worker(s, tmp_path / "worker.log")
    try:
        for topic, path in files.items():
            produce(kcat, s, topic, path)
        drained = asyncio.run(wait_drained(s, 150))
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert worker.poll() is None, log[-3000:]
        assert drained, log[-3000:]
        wait_for_warnings(s, scenario.expected, extra_s=20,
                          read=lambda: warnings_of(consume(kcat, s, WARNINGS)))
        records = consume(kcat, s, WARNINGS)
    finally:
        stop_process(worker)

    # what kcat reads is what the in-process replay of the same file publishes
    warnings = warnings_of(records)
    assert warnings, log[-3000:]
    assert_same_incidents(warnings, scenario.expected)
    # every version keyed by its warning id (docs/operations.md)
    assert [r["key"] for r in records] == [w.warning_id for w in warnings]

    # kcat put every record on the partition the replay reads it from (keyed by region)
    for source, topic in SOURCE_TOPICS.items():
        got = consume(kcat, s, topic)
        assert len(got) == len(files[topic].read_bytes().splitlines()), source
        assert all(r["partition"] == partition_for(r["key"].encode(), s.partitions)
                   for r in got), source

    # the replay file's bad lines and the simulator's malformed records are dead letters
    dead = [DeadLetter.model_validate_json(r["payload"]) for r in consume(kcat, s, DEADLETTER)]
    assert len(dead) == scenario.n_malformed + len(BAD_LINES)
    # (the bad lines have no key: each lands on any partition)
    bad = sorted(d.offset for d in dead if d.error_type == "replay_line")
    assert bad == [scenario_lines(scenario) + i + 1 for i in range(len(BAD_LINES))]
    assert all(d.reason for d in dead)


def scenario_lines(scenario: Scenario) -> int:
    """Lines in the scenario's replay file (the bad lines come after them)."""
    return len(scenario.events.read_bytes().rstrip(b"\n").split(b"\n"))


def test_shim_drops_the_api_versions_response_tags_only() -> None:
    """The response as Tansu 0.6.0 sends it: correlation id, error, three API ranges (each
    with empty tags), throttle time, then its four default-valued tags."""
    apis = b"".join(struct.pack(">hhh", k, 0, v) + b"\x00" for k, v in ((0, 11), (1, 17),
                                                                        (18, 4)))
    head = struct.pack(">ih", 7, 0) + bytes([3 + 1]) + apis + struct.pack(">i", 0)
    tags = bytes.fromhex("04" "000101" "0108ffffffffffffffff" "020101" "030100")
    assert without_response_tags(head + tags) == head + b"\x00"
    assert without_response_tags(head + b"\x00") == head + b"\x00"
