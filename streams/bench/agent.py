"""A faust agent that only iterates events: the engine's ceiling, for ``tocsin bench``.

Run as ``python -m streams.bench.agent CONFIG_JSON``; prints one JSON line
``{"n": N, "seconds": S}`` (from the first event to the N-th, startup and group join
excluded) and exits. Options (each measured on its own by the bench):

* ``uvloop``: run faust on uvloop's event loop;
* ``noop_monitor``: replace faust's Monitor sensor (per-event statistics) by a no-op sensor;
* ``cython``: faust's Cython stream iterator (False sets ``NO_CYTHON``);
* ``raw``: raw value/key serializers (no per-event JSON decoding by faust);
* ``batch``: take events in batches of this size (``take_events``) and decode each batch
  with one ``json.loads`` of the joined values;
* ``commit_interval``, ``max_poll_records``, ``buffer``, ``fetch_max_bytes``: consumer
  knobs;
* ``batch_drain``: :class:`streams.runtime.faust_tuning.BatchDrainConsumer` (one flow-control wait
  per fetched batch instead of per message), ``poll_timeout_s`` its poll timeout (faust:
  1 s), ``fetch_max_wait_ms``: the consumer's fetch wait (faust hard-codes 1500)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any


def main(argv: list[str]) -> None:
    cfg: dict[str, Any] = json.loads(argv[0])
    _prepare_runtime(cfg)
    import faust

    app = _app(cfg)
    # one agent per source topic, as the Tocsin worker has
    topic_kw: dict[str, Any] = {"value_serializer": "raw" if cfg.get("raw") else "json",
                                "key_serializer": "raw" if cfg.get("raw") else None,
                                "partitions": int(cfg["partitions"])}
    topics = [app.topic(t, **topic_kw) for t in cfg["topics"]]
    noop = _noop_agent(int(cfg["n"]), int(cfg.get("batch") or 0), bool(cfg.get("trace")))
    for i, topic in enumerate(topics):
        app.agent(topic, name=f"noop{i}")(noop)
    sys.argv = [sys.argv[0]]
    worker = faust.Worker(app, loglevel="error", quiet=True)
    worker.execute_from_commandline()


def _prepare_runtime(cfg: dict[str, Any]) -> None:
    """What must be set before faust is imported: ``NO_CYTHON`` and uvloop's event loop."""
    if not cfg.get("cython", True):
        os.environ["NO_CYTHON"] = "1"
    if cfg.get("uvloop"):
        import uvloop

        uvloop.install()


def _app_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The faust app's settings: the broker, a fast group join and the consumer knobs."""
    from streams.runtime.monitor import NoopMonitor

    kw: dict[str, Any] = {
        "broker": cfg["broker"],
        "broker_session_timeout": 8.0, "broker_rebalance_timeout": 8.0,
        "broker_heartbeat_interval": 1.0, "consumer_auto_offset_reset": "earliest",
        "web_enabled": False, "datadir": cfg["datadir"],
        "topic_partitions": int(cfg["partitions"]),
    }
    if cfg.get("noop_monitor"):
        kw["Monitor"] = NoopMonitor
    if cfg.get("commit_interval") is not None:
        kw["broker_commit_interval"] = float(cfg["commit_interval"])
    if cfg.get("max_poll_records") is not None:
        kw["broker_max_poll_records"] = int(cfg["max_poll_records"])
    if cfg.get("buffer") is not None:
        kw["stream_buffer_maxsize"] = int(cfg["buffer"])
    if cfg.get("fetch_max_bytes") is not None:
        kw["consumer_max_fetch_size"] = int(cfg["fetch_max_bytes"])
    if cfg.get("raw"):
        kw["value_serializer"] = "raw"
        kw["key_serializer"] = "raw"
    return kw


def _app(cfg: dict[str, Any]) -> Any:
    """A plain ``faust.App``, or ``TunedApp`` for the batch-drain and fetch-wait options."""
    import faust

    kw = _app_settings(cfg)
    if cfg.get("batch_drain") or cfg.get("fetch_max_wait_ms"):
        from streams.runtime.faust_tuning import TunedApp

        return TunedApp(cfg["app_id"], batch_drain=bool(cfg.get("batch_drain")),
                        fetch_max_wait_ms=int(cfg.get("fetch_max_wait_ms") or 1500),
                        poll_timeout_s=float(cfg.get("poll_timeout_s") or 1.0), **kw)
    return faust.App(cfg["app_id"], **kw)


def _noop_agent(n_target: int, batch: int, trace: bool
                ) -> Callable[[Any], Coroutine[Any, Any, None]]:
    """An agent that counts events (in batches of ``batch`` decoded at once, if set) and
    reports and exits at the ``n_target``-th; ``trace`` logs the count per batch."""
    state = {"n": 0, "first": 0.0}

    def done() -> None:
        seconds = time.perf_counter() - state["first"]
        # faust redirects sys.stdout to its logger: write to the file descriptor
        os.write(1, (json.dumps({"n": state["n"], "seconds": seconds}) + "\n").encode())
        os._exit(0)

    async def noop(stream: Any) -> None:
        if batch:
            async for events in stream.take_events(batch, 0.05):
                if not state["n"]:
                    state["first"] = time.perf_counter()
                values = [ev.value for ev in events]
                json.loads(b"[" + b",".join(values) + b"]")  # one decode per batch
                state["n"] += len(values)
                if trace:
                    elapsed = time.perf_counter() - state["first"]
                    os.write(2, f"{elapsed:.3f} {state['n']}\n".encode())
                if state["n"] >= n_target:
                    done()
        else:
            async for _value in stream:
                if not state["n"]:
                    state["first"] = time.perf_counter()
                state["n"] += 1
                if state["n"] >= n_target:
                    done()

    return noop


if __name__ == "__main__":
    main(sys.argv[1:])
