"""A Kafka-protocol TCP proxy (asyncio, in a thread) that lets Debian bookworm's kcat
(librdkafka 2.0.2) talk to the embedded Tansu 0.6.0 broker.

Measured: Tansu answers ApiVersions v3 with its four KIP-482 tagged fields written out at
their default values (no supported or finalized features, epoch -1, not migrating), which
the Kafka protocol allows; librdkafka 2.0.2 skips each tag's data one byte short ("Protocol
read buffer underflow for ApiVersion v3 at 274/279 ... expected 216172782113783806 bytes",
the next varint read from inside the epoch's eight 0xff bytes, less one), so kcat never
gets past the handshake. This proxy drops those response tags, and only those: every other
byte, both ways, is forwarded unchanged. A real Kafka broker needs no proxy."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Iterator

from tests.tls_proxy import forwarding, serve_in_thread

API_VERSIONS = 18


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def _skip_tags(buf: bytes, pos: int) -> int:
    count, pos = _uvarint(buf, pos)
    for _ in range(count):
        _tag, pos = _uvarint(buf, pos)
        size, pos = _uvarint(buf, pos)
        pos += size
    return pos


def without_response_tags(frame: bytes) -> bytes:
    """An ApiVersions v3+ response (correlation id first: its header is always v0) with its
    top-level tagged fields dropped."""
    pos = 4 + 2  # correlation id, error code
    n, pos = _uvarint(frame, pos)
    for _ in range(max(n - 1, 0)):
        pos = _skip_tags(frame, pos + 6)  # api key, min and max version, then its tags
    pos += 4  # throttle_time_ms
    return frame[:pos] + b"\x00"


async def _frames(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        head = await reader.readexactly(4)
        yield await reader.readexactly(struct.unpack(">i", head)[0])


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   pending: set[int], requests: bool) -> None:
    """Frames from ``reader`` to ``writer``. Requests note the correlation ids of
    ApiVersions v3+ in ``pending``; the responses to those lose their tags."""
    try:
        async for frame in _frames(reader):
            if requests:
                key, version, corr = struct.unpack(">hhi", frame[:8])
                if key == API_VERSIONS and version >= 3:
                    pending.add(corr)
            elif (corr := struct.unpack(">i", frame[:4])[0]) in pending:
                pending.discard(corr)
                frame = without_response_tags(frame)
            writer.write(struct.pack(">i", len(frame)) + frame)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.contextmanager
def librdkafka_shim(listen_port: int, target_port: int) -> Iterator[None]:
    """Listen on loopback ``listen_port``, forward to the broker on ``target_port``."""

    async def pipes(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                    tr: asyncio.StreamReader, tw: asyncio.StreamWriter) -> None:
        pending: set[int] = set()
        await asyncio.gather(_forward(r, tw, pending, True), _forward(tr, w, pending, False))

    with serve_in_thread(forwarding(target_port, pipes), listen_port):
        yield
