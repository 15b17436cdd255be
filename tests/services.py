"""Real Prometheus and Alertmanager servers for tests: installed from the Debian packages
when missing (``apt-get install -y prometheus prometheus-alertmanager``, about 15 s) and
started on loopback in a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.tools.broker import free_port

PACKAGES = {"prometheus": "prometheus", "promtool": "prometheus",
            "prometheus-alertmanager": "prometheus-alertmanager",
            "amtool": "prometheus-alertmanager"}


class ServiceUnavailable(RuntimeError):
    """A server binary could not be installed or started."""


def ensure_binary(name: str) -> str:
    """Path of ``name``, installing its Debian package first if it is missing."""
    found = shutil.which(name)
    if found:
        return found
    pkg = PACKAGES[name]
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
        raise ServiceUnavailable(
            f"{name} not found and `apt-get install -y {pkg}` failed: "
            f"{proc.stderr.strip()[-500:]}")
    return found


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceUnavailable(f"{url} server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise ServiceUnavailable(f"{url} did not answer in {timeout} s: {log.read_text()[-2000:]}")


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
def prometheus(config: Path, workdir: Path) -> Iterator[str]:
    """A Prometheus on loopback with ``config``; yields its base URL."""
    binary = ensure_binary("prometheus")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
           f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"]
    with running(cmd, f"{url}/-/ready", workdir, "prometheus"):
        yield url


@contextmanager
def alertmanager(config: Path, workdir: Path) -> Iterator[str]:
    """An Alertmanager on loopback with ``config`` (no clustering); yields its base URL."""
    binary = ensure_binary("prometheus-alertmanager")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [binary, f"--config.file={config}", f"--storage.path={workdir / 'am-data'}",
           f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]
    with running(cmd, f"{url}/-/ready", workdir, "alertmanager"):
        yield url
