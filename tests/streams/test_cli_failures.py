"""Every ``tocsin`` command's failure paths end in one line on stderr and a documented exit
status (2 usage, input or setting; 69 unavailable; 70 internal), with no traceback unless
``--debug``; and the command line's manners: ``--version``, an example in every help,
``--broker`` naming its default, ``topics list`` in 80 columns.

A new command fails :func:`test_every_command_has_failure_cases` until it has a line in
``CASES`` (and an example in its help)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from streams.core.connect import DEFAULT_BROKER
from streams.core.environment import known_variables, settings_message, unknown_variable_warnings
from streams.core.errors import ConfigError
from streams.core.settings import TocsinSettings
from streams.tools.cli import app
from streams.tools.cli_common import run, settings_with

ROOT = Path(__file__).resolve().parents[2]
#: stderr lines a failing command may print besides its one error line
ALLOWED = ("connecting to ", "warning: ")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: connections are refused


DOWN = f"127.0.0.1:{closed_port()}"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # "{tmp}", "{garbage}", "{busy}" are filled in
    code: int
    says: str  # in the error line
    env: dict[str, str] = field(default_factory=dict)


#: command -> its failure cases (and every command gets an unknown option, in-process)
CASES: dict[str, tuple[Case, ...]] = {
    "schema": (Case(("schema", "--topic", "nope"), 2, "no schema for topic 'nope'"),),
    "topics create": (Case(("topics", "create", "--broker", DOWN), 69,
                           f"no answer from the Kafka broker at {DOWN}"),),
    "topics list": (Case(("topics", "list"), 2, "TOCSIN_PARTITIONS='abc'",
                         {"TOCSIN_PARTITIONS": "abc"}),),
    "broker": (Case(("broker", "--port", "{busy}"), 69, "cannot listen on"),
               Case(("broker", "--port", "0"), 2, "--port")),
    "worker": (Case(("worker", "--broker", DOWN), 69, "TOCSIN_BROKER_UNAVAILABLE_LIMIT_S=1"),
               Case(("worker",), 2, "TOCSIN_BROKER_UNAVAILABLE_LIMIT_S='-1'",
                    {"TOCSIN_BROKER_UNAVAILABLE_LIMIT_S": "-1"}),
               Case(("worker", "--broker", ""), 2, "--broker=''")),
    "simulate": (Case(("simulate", "--days", "2", "--out", "{tmp}/e.jsonl"), 2,
                      "--days 2 is too short"),
                 Case(("simulate",), 2, "say where to write"),
                 Case(("simulate", "--world", "nope", "--out", "{tmp}/e.jsonl"), 2,
                      "--world")),
    "replay": (Case(("replay", "{tmp}/missing.jsonl"), 2, "cannot read the replay file"),
               Case(("replay", "{garbage}", "--broker", DOWN), 69, "no answer")),
    "explain": (Case(("explain", "tw-x-1", "--broker", DOWN), 69, "no answer"),
                Case(("explain", "tw-x-1", "--file", "{tmp}/missing.jsonl"), 2,
                     "cannot read the warnings file"),
                Case(("explain", "tw-x-1", "--file", "{garbage}"), 2,
                     "no warning 'tw-x-1' found in")),
    "feedback": (Case(("feedback", "tw-r1-1", "confirm", "--region", "r1", "--by", "op-1",
                       "--broker", DOWN), 69, "no answer"),
                 Case(("feedback", "tw-r1-1", "delete", "--region", "r1", "--by", "op-1"), 2,
                      "not sent"),
                 Case(("feedback", "tw-r1-1", "dismiss", "--region", "r1", "--by", "op-1"), 2,
                      "needs a reason")),
    "demo": (Case(("demo", "--days", "4", "--broker", DOWN), 69, "no answer"),
             Case(("demo", "--days", "2"), 2, "--days 2 is too short")),
    "bench": (Case(("bench", "--events", "0"), 2, "--events"),
              Case(("bench", "--series", "a,b"), 2, "--series")),
    "signals": (Case(("signals",), 2, "TOCSIN_SIGNALS",
                     {"TOCSIN_SIGNALS": "/nonexistent/signals.yaml"}),),
    "eval replay": (Case(("eval", "replay", "--events", "{tmp}/missing.jsonl", "--truth",
                          "{tmp}/missing.json"), 2, "cannot read"),
                    Case(("eval", "replay", "--events", "{garbage}", "--truth", "{garbage}"),
                         2, "not JSON"),
                    Case(("eval", "replay", "--events", "{garbage}", "--truth", "{empty}"), 2,
                         "TOCSIN_SCENARIOS", {"TOCSIN_SCENARIOS": "/nonexistent/s.yaml"}),
                    Case(("eval", "replay", "--events", "{garbage}", "--truth", "{empty}",
                          "--baseline", "nope"), 2, "--baseline"),
                    Case(("eval", "replay", "--events", "{garbage}", "--truth", "{empty}",
                          "--warnings-out", "{garbage}/w.jsonl"), 2, "w.jsonl"),
                    Case(("eval", "replay", "--events", "{garbage}", "--truth", "{empty}",
                          "--dead-letters-out", "{garbage}/d.jsonl"), 2, "d.jsonl")),
    "validate": (Case(("validate", "{tmp}/missing.jsonl"), 2, "cannot read"),
                 Case(("validate", "{garbage}", "--source", "radio"), 2, "--source 'radio'"),
                 Case(("validate", "{garbage}", "--out", "{garbage}/r.jsonl"), 2, "r.jsonl"),
                 Case(("validate", "{garbage}", "--out", "{tmp}"), 2, "a folder"),
                 Case(("validate", "{garbage}", "--regions", "{tmp}/no.csv"), 2,
                      "the --regions file")),
    "eval nab": (Case(("eval", "nab", "--data", "{tmp}/nab", "--labels", "{tmp}/l.json"), 2,
                      "cannot read NAB labels"),),
    "eval prewarn": (Case(("eval", "prewarn", "--seeds", "x"), 2, "--seeds"),),
    "eval zoo": (Case(("eval", "zoo", "--worlds", "0"), 2, "--worlds"),),
    "grafana push": (Case(("grafana", "push", "--token", "t"), 2, "TOCSIN_GRAFANA_URL"),
                     Case(("grafana", "push", "--url", f"http://{DOWN}", "--token", "t"), 69,
                          "cannot reach Grafana")),
}


def command_paths(cmd: Any = None, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group of the app, as its words (the root is ``()``)."""
    cmd = cmd if cmd is not None else typer.main.get_command(app)
    yield prefix
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from command_paths(sub, (*prefix, name))


def leaf_commands() -> list[str]:
    root = typer.main.get_command(app)
    out = []
    for path in command_paths():
        cmd = root
        for word in path:
            cmd = cmd.commands[word]  # type: ignore[attr-defined]
        if path and not hasattr(cmd, "commands"):
            out.append(" ".join(path))
    return out


def all_cases() -> list[tuple[str, Case]]:
    return [(name, c) for name, cases in CASES.items() for c in cases]


def fresh_env(home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "PYTHONPATH": str(ROOT), "TOCSIN_BROKER_UNAVAILABLE_LIMIT_S": "1",
            "TOCSIN_METRICS_PORT": "0", "TOCSIN_PSEUDONYM_KEY": "k" * 32,
            "TOCSIN_DATA_DIR": str(home / "data"), **extra}


def tocsin(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streams", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every case run once, in parallel (a subprocess each, in a fresh environment)."""
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "garbage.txt").write_text("not json\n")
    (tmp / "empty.json").write_text("[]")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        fill = {"tmp": str(tmp), "garbage": str(tmp / "garbage.txt"),
                "empty": str(tmp / "empty.json"), "busy": str(busy.getsockname()[1])}

        def run(case: Case) -> subprocess.CompletedProcess[str]:
            return tocsin([a.format(**fill) for a in case.args], fresh_env(tmp, **case.env),
                          tmp)

        cases = all_cases()
        with ThreadPoolExecutor(6) as pool:
            done = list(pool.map(run, [c for _, c in cases]))
        yield {f"{n}: {' '.join(c.args)}": r for (n, c), r in zip(cases, done, strict=True)}


def one_line(stderr: str) -> str:
    """The error line of a failed command's stderr; fails unless it is the only line
    besides the allowed ones."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if not ln.startswith(ALLOWED)]
    assert len(errors) == 1, stderr
    return errors[0]


def test_every_command_has_failure_cases() -> None:
    assert sorted(leaf_commands()) == sorted(CASES), "add the new command's cases to CASES"


@pytest.mark.parametrize("name, case", all_cases(),
                         ids=[" ".join(c.args) for _, c in all_cases()])
def test_a_failure_is_one_line_and_its_exit_status(results: dict[str, Any], name: str,
                                                   case: Case) -> None:
    res = results[f"{name}: {' '.join(case.args)}"]
    line = one_line(res.stderr)
    assert (res.returncode, line.startswith("error: ")) == (case.code, True), res.stderr
    assert case.says in line, line
    if case.code == 69:  # the broker's address, before the wait
        assert re.search(r"^connecting to |cannot listen|cannot reach", res.stderr, re.M)


@pytest.mark.parametrize("name", leaf_commands())
def test_a_usage_error_is_one_line(name: str, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["tocsin", *name.split(), "--no-such-option"])
    with pytest.raises(SystemExit) as exc:
        run(app)
    line = one_line(capsys.readouterr().err)
    assert exc.value.code == 2
    assert line == (f"error: No such option: --no-such-option; see 'tocsin {name} --help'")


def test_debug_adds_the_traceback(tmp_path: Path) -> None:
    res = tocsin(["--debug", "explain", "tw-x-1", "--broker", DOWN], fresh_env(tmp_path),
                 tmp_path)
    assert res.returncode == 69
    assert "Traceback" in res.stderr and "BrokerUnavailableError" in res.stderr
    assert res.stderr.splitlines()[-1].startswith("error: no answer from the Kafka broker")


def test_an_unexpected_exception_is_an_internal_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import streams.tools.explain

    def boom(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(streams.tools.explain, "versions_of", boom)
    (tmp_path / "w.jsonl").write_text("")
    args = ["explain", "tw-x-1", "--file", str(tmp_path / "w.jsonl")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 70
    assert res.stderr == "internal error: RuntimeError: boom; rerun with --debug and report it\n"
    res = CliRunner().invoke(app, ["--debug", *args])
    assert res.exit_code == 70 and "Traceback" in res.stderr and "boom" in res.stderr


def test_an_unknown_variable_is_warned_with_the_nearest_name(tmp_path: Path) -> None:
    res = tocsin(["topics", "list"], fresh_env(tmp_path, TOCSIN_PARTITON="8"), tmp_path)
    assert res.returncode == 0
    assert res.stderr == ("warning: TOCSIN_PARTITON is not a Tocsin setting; did you mean "
                          "TOCSIN_PARTITIONS?\n")
    assert unknown_variable_warnings({"TOCSIN_QWERTY": "1", "TOCSIN_BROKER": "x"}) == [
        "warning: TOCSIN_QWERTY is not a Tocsin setting; see docs/settings.md"]


def test_kubernetes_service_links_are_not_warned_about() -> None:
    """A Service named tocsin-worker gives each pod TOCSIN_WORKER_SERVICE_HOST and the rest
    (deploy/k8s turns them off; other manifests may not). A misspelt setting is still
    warned about, even when it ends in _PORT."""
    links = {"TOCSIN_WORKER_SERVICE_HOST": "10.0.0.5", "TOCSIN_WORKER_SERVICE_PORT": "9464",
             "TOCSIN_WORKER_SERVICE_PORT_METRICS": "9464",
             "TOCSIN_WORKER_PORT": "tcp://10.0.0.5:9464",
             "TOCSIN_WORKER_PORT_9464_TCP": "tcp://10.0.0.5:9464",
             "TOCSIN_WORKER_PORT_9464_TCP_ADDR": "10.0.0.5"}
    assert unknown_variable_warnings(links) == []
    assert unknown_variable_warnings({**links, "TOCSIN_METRIC_PORT": "9464"}) == [
        "warning: TOCSIN_METRIC_PORT is not a Tocsin setting; did you mean "
        "TOCSIN_METRICS_PORT?"]


def test_every_misspelling_by_one_letter_finds_its_variable() -> None:
    known = known_variables()
    for name in known:
        for i in range(len("TOCSIN_"), len(name)):
            typo = name[:i] + name[i + 1:]
            if typo not in known:
                assert unknown_variable_warnings({typo: "1"}) == [
                    f"warning: {typo} is not a Tocsin setting; did you mean {name}?"]


def test_every_tocsin_variable_in_the_project_is_known() -> None:
    """Variables read outside TocsinSettings are listed in streams/core/environment.py, so
    they are not warned about."""
    found: set[str] = set()
    for part in ("streams", "detectors", "dashboards", "benchmarks", "deploy", "docs", "tests"):
        for path in (ROOT / part).rglob("*"):
            if path.suffix in (".py", ".md", ".yaml", ".yml", ".sh", ".toml") and \
                    path.name != Path(__file__).name:
                found |= set(re.findall(r"TOCSIN_[A-Z][A-Z0-9_]*[A-Z0-9]",
                                        path.read_text(errors="replace")))
    found |= set(re.findall(r"TOCSIN_[A-Z][A-Z0-9_]*[A-Z0-9]", (ROOT / "README.md").read_text()))
    assert found - known_variables() == set()


@given(field=st.sampled_from([n for n, f in TocsinSettings.model_fields.items()
                              if f.annotation in (int, float)]), value=st.text(max_size=12))
def test_a_bad_setting_is_one_line_naming_its_variable(field: str, value: str) -> None:
    try:
        TocsinSettings(**{field: value})
    except ValidationError as e:
        msg = settings_message(e)
        assert "\n" not in msg and "errors.pydantic.dev" not in msg
        assert msg.startswith((f"TOCSIN_{field.upper()}={value!r}: ",
                               "TOCSIN_REORDER_IDLE_S ("))  # or the check across settings
        assert msg.endswith("; fix or unset it")


def test_a_bad_option_is_named_as_the_option() -> None:
    with pytest.raises(ConfigError, match=r"^--broker='': .*; fix it$"):
        settings_with(broker="")


def test_every_help_has_an_example() -> None:
    example = re.compile(r"Example: ([A-Z_]+=\S+ )*tocsin ")
    missing = [" ".join(p) for p in command_paths() if not example.search(
        " ".join(CliRunner().invoke(app, [*p, "--help"]).output.split()))]
    assert missing == []


def test_every_broker_option_names_its_default_and_the_variable() -> None:
    root = typer.main.get_command(app)
    seen = 0
    for path in command_paths():
        cmd = root
        for word in path:
            cmd = cmd.commands[word]  # type: ignore[attr-defined]
        for p in cmd.params:
            if p.name == "broker":
                seen += 1
                assert "TOCSIN_BROKER" in p.help and "default:" in p.help, path
                assert path == ("demo",) or DEFAULT_BROKER in p.help, path
    assert seen >= 6
    assert f"TOCSIN_BROKER, else {DEFAULT_BROKER}" in " ".join(
        CliRunner().invoke(app, ["replay", "--help"]).output.split())


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    res = tocsin(["--version"], fresh_env(tmp_path), tmp_path)
    assert (res.returncode, res.stdout) == (0, f"tocsin {version('tocsin')}\n")


def test_topics_list_fits_80_columns(tmp_path: Path) -> None:
    from streams.core.topics import CATALOGUE

    res = tocsin(["topics", "list"], fresh_env(tmp_path, COLUMNS="80"), tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(len(ln.rstrip()) for ln in lines) <= 80 and "…" not in res.stdout
    names = {ln.split()[0] for ln in lines if ln.strip()}
    assert {t.name for t in CATALOGUE} <= names  # every name whole, on its line


def test_out_into_a_missing_folder_creates_it(tmp_path: Path) -> None:
    out, truth = tmp_path / "new" / "deeper" / "e.jsonl", tmp_path / "new" / "t.json"
    res = tocsin(["simulate", "--days", "4", "--out", str(out), "--truth", str(truth)],
                 fresh_env(tmp_path), tmp_path)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 0 and truth.stat().st_size > 0


@pytest.mark.integration
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_broker_stops_its_tansu_child_on_a_signal(tmp_path: Path, signum: str) -> None:
    import signal

    port = closed_port()
    proc = subprocess.Popen([sys.executable, "-m", "streams", "broker", "--port", str(port)],
                            env=fresh_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        child = int(re.search(r"\(pid (\d+)\)", line)[1])  # type: ignore[index]
        os.kill(child, 0)  # running
        proc.send_signal(getattr(signal, signum))
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # the port is free again
