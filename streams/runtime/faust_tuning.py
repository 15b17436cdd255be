"""faust, tuned: what ``tocsin bench`` measured to matter, packaged as an App subclass.

1. **Batch drain.** faust's consumer hands every fetched message to the streams under its
   own ``wait_first(callback(message), suspend_flow.wait())``: four asyncio tasks created
   and cancelled per message, about half of a no-op agent's CPU (py-spy, see
   docs/performance.md). :class:`BatchDrainConsumer` delivers each fetched batch under one
   such wait. Flow control is unchanged: when the flow is suspended (a rebalance), the
   batch's remaining deliveries are abandoned exactly as faust abandons a pending one, and
   the read offsets advance only for delivered messages.
2. **Poll timeout.** faust polls the fetcher with a 1 s timeout; when flow control has paused
   the partitions that have data (a full stream buffer), the poll idles until that second
   is over even though they resumed meanwhile: a no-op agent stalled for ~1 s every 40k
   events. :class:`BatchDrainConsumer` polls with 50 ms.
3. **Fetch wait.** faust hard-codes ``fetch_max_wait_ms=1500``. A broker that does not wake
   a waiting fetch when data arrives (Tansu, the embedded broker, measured) then adds up to
   1.5 s per hop; :class:`TunedApp` sets it from ``fetch_max_wait_ms`` (100 ms: at most ten
   empty fetches a second per broker connection when idle).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 100


class TunedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class BatchDrainConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer, delivering each fetched batch under one flow-control
    wait instead of one per message."""

    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS
    #: faust polls with a 1 s timeout: when flow control has paused the partitions that
    #: have data (a full stream buffer), the poll then idles for a second after they resume
    poll_timeout_s: float = 0.05

    def _new_consumer_thread(self) -> Any:
        thread = TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)
        thread.fetch_max_wait_ms = self.fetch_max_wait_ms
        return thread

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - timing
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        async def deliver(batch: list[tuple[Any, Any]]) -> None:
            for n, (tp, message) in enumerate(batch):
                if n and not n % 100:
                    await asyncio.sleep(0)  # let health checks and timers run
                offset = message.offset
                r_offset = get_read_offset(tp)
                if r_offset is None or offset >= r_offset:
                    gap = offset - (r_offset or 0)
                    if gap > 1 and r_offset and acks_enabled_for(message.topic):
                        await self._add_gap(tp, r_offset + 1, offset)
                    if commit_every is not None and self._n_acked >= commit_every:
                        self._n_acked = 0
                        await self.commit()
                    await callback(message)
                    set_read_offset(tp, offset)

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = cast(AsyncIterator[tuple[Any, Any]],
                           self.getmany(timeout=self.poll_timeout_s))
                await self.sleep(0)
                if not self.should_stop:
                    batch = [item async for item in ait]
                    if batch:
                        await self.wait_first(deliver(batch), self.suspend_flow.wait())
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class CheckpointCommits:
    """Mixin: faust's own commits (periodic, on errors, on rebalance) do nothing; the
    application commits the offsets its checkpoints cover with :meth:`commit_offsets`, so
    the committed offsets never run ahead of the saved state."""

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        """faust calls this on its commit timer: commit nothing, but drop the offsets its
        acknowledgements recorded. faust trims them only in its own commit, so without
        this they would grow by ~80 bytes per record for as long as the worker runs."""
        from faust.types.tuples import ack_lock

        with ack_lock:
            acked = getattr(self, "_acked", None)
            if acked:
                for tp in list(acked):
                    acked[tp] = []
                    self._acked_index[tp] = set()  # type: ignore[attr-defined]
            gaps = getattr(self, "_gap", None)
            if gaps:
                gaps.clear()
        return False

    async def commit_offsets(self, offsets: dict[Any, int]) -> bool:
        """Commit exactly ``offsets`` (TP -> next offset) for the assigned partitions."""
        return bool(await self._commit(offsets))  # type: ignore[attr-defined]


class TunedTransport(faust_aiokafka.Transport):
    Consumer = BatchDrainConsumer


class TunedApp(faust.App):
    """A faust App whose consumer uses :class:`BatchDrainConsumer` with
    ``fetch_max_wait_ms``; otherwise faust unchanged. ``own_commits=False``: offsets are
    committed only by the application (:class:`CheckpointCommits`)."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
                 batch_drain: bool = True, poll_timeout_s: float = 0.05,
                 own_commits: bool = True, **kwargs: Any) -> None:
        self._own_commits = own_commits
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._batch_drain = batch_drain
        self._poll_timeout_s = poll_timeout_s
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        consumer = BatchDrainConsumer if self._batch_drain else _WaitOnlyConsumer
        bases: tuple[type, ...] = (
            (consumer,) if self._own_commits else (CheckpointCommits, consumer))
        cls = type("TocsinTransport", (TunedTransport,), {
            "Consumer": type("TocsinConsumer", bases,
                             {"fetch_max_wait_ms": self._fetch_max_wait_ms,
                              "poll_timeout_s": self._poll_timeout_s})})
        return cls(self.conf.broker_consumer, self)


class _WaitOnlyConsumer(faust_aiokafka.Consumer):
    """faust's own drain loop, with only the fetch wait changed (for measurements)."""

    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS

    def _new_consumer_thread(self) -> Any:
        thread = TunedConsumerThread(self, loop=self.loop, beacon=self.beacon)
        thread.fetch_max_wait_ms = self.fetch_max_wait_ms
        return thread
