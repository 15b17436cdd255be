"""A TLS-terminating TCP proxy (asyncio, in a thread) for tests: clients speak TLS to it,
it forwards the plain bytes to a broker. The embedded Tansu 0.6.0 has no TLS listener, so
this is how the worker's TLS client settings are tested against a real Kafka protocol
broker."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (openssl), as (cert, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


Pipes = Callable[[asyncio.StreamReader, asyncio.StreamWriter, asyncio.StreamReader,
                  asyncio.StreamWriter], Awaitable[None]]


def forwarding(target_port: int, pipes: Pipes) -> Handler:
    """A handler that connects each client to the broker on loopback ``target_port`` and
    runs ``pipes(client_reader, client_writer, broker_reader, broker_writer)``."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            w.close()
            return
        await pipes(r, w, tr, tw)

    return handle


@contextlib.contextmanager
def serve_in_thread(handle: Handler, listen_port: int,
                    ctx: ssl.SSLContext | None = None) -> Iterator[None]:
    """Serve ``handle`` on loopback ``listen_port`` from an event loop in a thread, until the
    block ends."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    servers: list[asyncio.base_events.Server] = []

    async def start() -> None:
        servers.append(await asyncio.start_server(handle, "127.0.0.1", listen_port, ssl=ctx))
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield
    finally:
        for srv in servers:
            loop.call_soon_threadsafe(srv.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@contextlib.contextmanager
def tls_proxy(listen_port: int, target_port: int, cert: Path, key: Path) -> Iterator[None]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))

    async def pipes(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                    tr: asyncio.StreamReader, tw: asyncio.StreamWriter) -> None:
        await asyncio.gather(_pipe(r, tw), _pipe(tr, w))

    with serve_in_thread(forwarding(target_port, pipes), listen_port, ctx):
        yield
