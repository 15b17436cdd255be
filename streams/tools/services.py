"""Real Prometheus and Alertmanager servers on loopback, in a working directory: for the
tests (which install the Debian packages ``prometheus`` and ``prometheus-alertmanager`` when
missing, about 15 s; ``kcat`` too, for the kcat test) and for ``tocsin bench --live`` (which
never installs anything and fails with one line, exit 69, when a binary is missing)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.core.errors import EXIT_UNAVAILABLE, TocsinError
from streams.tools.broker import free_port

PACKAGES = {"prometheus": "prometheus", "promtool": "prometheus",
            "prometheus-alertmanager": "prometheus-alertmanager",
            "amtool": "prometheus-alertmanager", "kcat": "kcat"}


class ServiceUnavailable(TocsinError):
    """A server binary is missing (or could not be installed) or did not start."""

    exit_code = EXIT_UNAVAILABLE


def ensure_binary(name: str, install: bool = True) -> str:
    """Path of ``name``; if it is missing, its Debian package is installed first
    (``install``) or :class:`ServiceUnavailable` says how to install it."""
    found = shutil.which(name)
    if found:
        return found
    pkg = PACKAGES[name]
    if not install:
        raise ServiceUnavailable(f"{name} not found on PATH: install the Debian package {pkg} "
                                 f"(apt-get install -y {pkg}) or put {name} on PATH")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in ([*sudo, "apt-get", "install", "-y", "--no-install-recommends", pkg],
                [*sudo, "apt-get", "update"],
                [*sudo, "apt-get", "install", "-y", "--no-install-recommends", pkg]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode == 0 and "install" in cmd and shutil.which(name):
            break
    found = shutil.which(name)
    if not found:
        why = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise ServiceUnavailable(f"{name} not found and `apt-get install -y {pkg}` failed: {why}")
    return found


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(f"{url} server exited: {_last_lines(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise ServiceUnavailable(f"{url} did not answer in {timeout} s: {_last_lines(log)}")


def _last_lines(log: Path, n: int = 3) -> str:
    """The last ``n`` lines of a server's log, on one line."""
    lines = log.read_text(errors="replace").strip().splitlines()[-n:]
    return " | ".join(x.strip() for x in lines) or f"(nothing in {log})"


@contextmanager
def running(cmd: list[str], ready_url: str, workdir: Path, name: str) -> Iterator[None]:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        wait_http(ready_url, 30, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _on_loopback(binary: str, config: Path, flags: list[str], workdir: Path, name: str
                 ) -> Iterator[str]:
    """``binary`` with ``config`` and ``flags`` on a free loopback port; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [binary, f"--config.file={config}", *flags,
           f"--web.listen-address=127.0.0.1:{port}"]
    with running(cmd, f"{url}/-/ready", workdir, name):
        yield url


@contextmanager
def prometheus(config: Path, workdir: Path) -> Iterator[str]:
    """A Prometheus on loopback with ``config``; yields its base URL."""
    with _on_loopback(ensure_binary("prometheus"), config,
                      [f"--storage.tsdb.path={workdir / 'tsdb'}", "--web.enable-lifecycle"],
                      workdir, "prometheus") as url:
        yield url


@contextmanager
def alertmanager(config: Path, workdir: Path, install: bool = True) -> Iterator[str]:
    """An Alertmanager on loopback with ``config`` (no clustering); yields its base URL.
    ``install``: install the package if the binary is missing (else fail, see
    :func:`ensure_binary`)."""
    with _on_loopback(ensure_binary("prometheus-alertmanager", install), config,
                      [f"--storage.path={workdir / 'am-data'}", "--cluster.listen-address="],
                      workdir, "alertmanager") as url:
        yield url
