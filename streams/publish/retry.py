"""The one retry policy of the notification sinks: capped exponential backoff.

A sink that could not deliver waits ``first_s``, then twice as long after each further
failure, never more than ``max_s``; a success resets it. New work does not shorten a wait;
an ``interrupt`` event (a sink stopping) does. :func:`report` passes a delivery outcome to
a sink's ``on_result`` callback, which must never stop the sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable


class Backoff:
    """The delay before the next attempt (0 while attempts succeed)."""

    def __init__(self, first_s: float, max_s: float) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.delay = 0.0

    def failed(self) -> float:
        """One more failure: the delay doubles (the first is ``first_s``), up to ``max_s``."""
        self.delay = min(self.max_s, self.delay * 2 if self.delay else self.first_s)
        return self.delay

    def reset(self) -> None:
        """A success: the next failure starts again from ``first_s``."""
        self.delay = 0.0

    async def wait(self, interrupt: asyncio.Event | None = None) -> None:
        """Wait out the current delay, or until ``interrupt`` is set."""
        if interrupt is None:
            await asyncio.sleep(self.delay)
            return
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.delay):
                await interrupt.wait()


def describe(e: BaseException) -> str:
    """``Type: message`` of an error (just the type when it has no message)."""
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def report(on_result: Callable[[str], None] | None, outcome: str,
           log: logging.Logger) -> None:
    """Pass ``outcome`` to ``on_result`` (if any); a failing callback is logged, never
    raised."""
    if on_result is None:
        return
    try:
        on_result(outcome)
    except Exception:
        log.exception("on_result(%r) failed", outcome)
