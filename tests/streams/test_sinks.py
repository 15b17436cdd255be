"""The sink contract, the shared retry policy and the Kafka outbox (no broker)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from streams.publish.alertmanager import AlertmanagerSink
from streams.publish.grafana import AnnotationSink
from streams.publish.kafka_sinks import KafkaSink, Outbox, WarningsTopicSink
from streams.publish.retry import Backoff
from streams.publish.sink import Sink


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    b = Backoff(0.5, 3.0)
    assert b.delay == 0.0
    assert [b.failed() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.delay == 0.0 and b.failed() == 0.5


def test_backoff_wait_is_cut_short_by_its_interrupt() -> None:
    async def main() -> float:
        b, stop = Backoff(30.0, 30.0), asyncio.Event()
        b.failed()
        loop = asyncio.get_running_loop()
        started = loop.time()
        loop.call_later(0.05, stop.set)
        await b.wait(stop)
        return loop.time() - started

    assert asyncio.run(main()) < 5.0


def test_every_sink_implements_the_contract() -> None:
    sinks: list[object] = [
        AlertmanagerSink("http://127.0.0.1:9", runbook_url="r", dashboard_url="d"),
        AnnotationSink("http://127.0.0.1:9", None, "d"),
        WarningsTopicSink(Outbox(_never), "t"),
    ]
    assert all(isinstance(s, Sink) for s in sinks)
    assert issubclass(KafkaSink, Sink)


async def _never(*args: Any) -> Awaitable[Any]:
    raise AssertionError("not sent")


def test_outbox_sends_in_order_and_waits_for_every_delivery() -> None:
    sent: list[tuple[Any, ...]] = []
    delivered: list[bytes] = []

    async def send(topic: Any, key: bytes | None, value: bytes,
                   partition: int | None) -> Awaitable[Any]:
        sent.append((topic, key, value, partition))

        async def ack() -> None:
            await asyncio.sleep(0.01)
            delivered.append(value)

        return asyncio.ensure_future(ack())

    async def main() -> None:
        box = Outbox(send)
        box.put("a", b"k1", b"1")
        box.put("b", None, b"2")
        await box.flush()
        await box.flush()  # nothing left: sends nothing

    asyncio.run(main())
    assert sent == [("a", b"k1", b"1", None), ("b", None, b"2", None)]
    assert sorted(delivered) == [b"1", b"2"]
