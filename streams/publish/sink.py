"""The sink contract: every output of warnings implements it.

A sink takes each batch of new warning versions in :meth:`Sink.submit`, which never blocks,
never raises and does no I/O. :meth:`Sink.flush` delivers what was submitted as far as the
sink guarantees delivery: a Kafka topic waits until the broker has every record (the batch
is acknowledged only after that: at-least-once); a notification sink (Alertmanager, Grafana)
posts from its own background task and returns at once, so it never holds up the stream.
:meth:`Sink.start` and :meth:`Sink.stop` begin and end the sink's background work, if any.

:class:`streams.runtime.publisher.Publisher` fans every batch out to its sinks; failed
notification posts are retried by the one policy in :mod:`streams.publish.retry`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from streams.core.schemas import Warning


@runtime_checkable
class Sink(Protocol):
    """Where warnings go: start, submit, flush, stop."""

    async def start(self) -> None:
        """Start the sink's background work (idempotent)."""

    def submit(self, warnings: list[Warning]) -> None:
        """Take new warning versions (no I/O; never blocks, never raises)."""

    async def flush(self) -> None:
        """Deliver what was submitted, as far as this sink guarantees delivery."""

    async def stop(self) -> None:
        """Deliver what it can, briefly, and end the background work."""
