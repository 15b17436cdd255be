"""A faust monitor that records nothing per event.

faust's default :class:`~faust.sensors.Monitor` updates several dictionaries and deques for
every message in, every stream event in and out, every send; Tocsin counts once per batch
in its own Prometheus metrics instead (``streams/metrics.py``), so the per-event bookkeeping
is pure cost. Rebalance and commit hooks are kept (they are rare)."""

from __future__ import annotations

from typing import Any

from faust.sensors import Monitor


class NoopMonitor(Monitor):
    """Monitor whose per-event and per-send hooks do nothing."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        return None

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        return None
