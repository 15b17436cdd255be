"""deploy/: the compose file, the Dockerfile and the Kubernetes manifests parse, reference
only files, ConfigMaps, Secrets and settings that exist, and agree with each other; the
generated operator files are current; the image's entrypoint, run outside Docker with the
documented variables, runs a worker against the embedded broker."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.core.settings import TocsinSettings
from streams.tools import reference

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTINGS = {f"TOCSIN_{n.upper()}" for n in TocsinSettings.model_fields}


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def k8s_docs() -> list[dict[str, Any]]:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for res in kust["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / res).read_text()) if d)
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_docs() if d["kind"] == kind]


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for ins, args in dockerfile():
        if ins == "ENV":
            for tok in shlex.split(args):
                k, _, v = tok.partition("=")
                env[k] = v
    return env


def exec_form(ins: str) -> list[str]:
    (args,) = [a for i, a in dockerfile() if i == ins]
    value: list[str] = json.loads(args)
    return value


# -- compose ----------------------------------------------------------------------------
def test_compose_references_only_files_that_exist_and_pins_images() -> None:
    doc = compose()
    services = doc["services"]
    assert {"kafka", "topics", "worker", "simulator", "prometheus", "alertmanager",
            "grafana"} <= set(services)
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            ctx = (DEPLOY / build["context"]).resolve()
            assert ctx.is_dir(), name
            assert (ctx / build["dockerfile"]).is_file(), name
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (DEPLOY / src).exists(), f"{name}: {src}"
        image = svc.get("image", "")
        assert image and ":" in image and not image.endswith(":latest"), name
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["simulator"]["profiles"] == ["simulator"]


def test_compose_workers_scale_and_use_only_real_settings() -> None:
    services = compose()["services"]
    worker = services["worker"]
    # --scale worker=N: no fixed name, no host port
    assert "container_name" not in worker and "ports" not in worker
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    for name in ("topics", "worker", "simulator"):
        env = services[name]["environment"]
        assert set(env) <= SETTINGS, set(env) - SETTINGS
        assert env["TOCSIN_BROKER"] == "kafka:9092"
        assert int(env["TOCSIN_METRICS_PORT"]) == 9464
    # Prometheus finds every worker replica by DNS
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "tocsin")
    assert job["dns_sd_configs"][0]["names"] == ["worker"]
    assert job["dns_sd_configs"][0]["port"] == 9464


def test_dockerfile_is_slim_pinned_non_root_with_a_health_check() -> None:
    ins = dockerfile()
    (base,) = [a for i, a in ins if i == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base), base
    for i, a in ins:
        if i == "COPY":
            *srcs, _dest = a.split()
            for src in srcs:
                assert (ROOT / src).exists(), src
    (user,) = [a for i, a in ins if i == "USER"]
    assert user not in ("root", "0")
    assert any(i == "HEALTHCHECK" for i, _ in ins)
    assert exec_form("ENTRYPOINT") == ["tocsin"] and exec_form("CMD") == ["worker"]
    assert set(docker_env()) - SETTINGS <= {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
                                            "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
    run = " ".join(a for i, a in ins if i == "RUN")
    assert "requirements.lock" in run and "--no-deps" in run


def test_the_image_lock_pins_every_runtime_dependency() -> None:
    """deploy/requirements.lock: exact versions, covering and satisfying pyproject's."""
    import tomllib

    from packaging.requirements import Requirement

    lock: dict[str, str] = {}
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, ver = line.partition("==")
            assert sep, f"not pinned: {line}"
            lock[name.lower().replace("_", "-")] = ver
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = req.name.lower().replace("_", "-")
        assert name in lock, f"{name} missing from deploy/requirements.lock"
        assert req.specifier.contains(lock[name], prereleases=True), (name, lock[name])


# -- Kubernetes ---------------------------------------------------------------------------
def test_k8s_manifests_parse_and_reference_what_exists() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for res in kust["resources"]:
        assert (K8S / res).is_file(), res
    docs = k8s_docs()
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ConfigMap", "Service", "PodMonitor",
            "PodDisruptionBudget"} <= kinds
    for d in docs:
        assert d["apiVersion"] and d["metadata"]["name"], d
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    (dep,) = by_kind("Deployment")
    pod = dep["spec"]["template"]["spec"]
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    for c in pod["containers"] + pod["initContainers"]:
        assert c["image"] in {i["name"] for i in kust["images"]}
        for ref in c.get("envFrom", []):
            assert ("ConfigMap", ref["configMapRef"]["name"]) in names
        for e in c.get("env", []):
            assert e["name"] in SETTINGS, e["name"]
            ref = e["valueFrom"]["secretKeyRef"]
            assert ref["name"] == secret["metadata"]["name"]
            assert ref["key"] in secret["stringData"], ref["key"]
        mounts = {m["name"] for m in c["volumeMounts"]}
        assert mounts <= {v["name"] for v in pod["volumes"]}
    for v in pod["volumes"]:
        if "configMap" in v:
            assert ("ConfigMap", v["configMap"]["name"]) in names
    # the init container runs with the worker's environment, mounts and restrictions
    (init,) = pod["initContainers"]
    (worker,) = pod["containers"]
    for key in ("envFrom", "env", "volumeMounts", "securityContext", "image"):
        assert init[key] == worker[key], key
    for res in kust["resources"]:  # no anchors: kustomize does not expand them
        assert not re.search(r"(^|\s)[&*][A-Za-z]", (K8S / res).read_text(), re.M), res


def test_k8s_settings_are_real_and_point_at_the_mounted_files() -> None:
    (settings,) = [d for d in by_kind("ConfigMap") if d["metadata"]["name"] == "tocsin-settings"]
    env = settings["data"]
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    TocsinSettings.model_validate(  # every value is valid for its setting
        {k.removeprefix("TOCSIN_").lower(): v for k, v in env.items()
         if k not in ("TOCSIN_REGION_REGISTRY", "TOCSIN_HOLIDAYS", "TOCSIN_SIGNALS")})
    (data,) = [d for d in by_kind("ConfigMap") if d["metadata"]["name"] == "tocsin-data"]
    (dep,) = by_kind("Deployment")
    (mount,) = [m for m in dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
                if m["name"] == "config"]
    for var in ("TOCSIN_REGION_REGISTRY", "TOCSIN_SCENARIOS", "TOCSIN_HOLIDAYS",
                "TOCSIN_SIGNALS"):
        path = Path(env[var])
        assert str(path.parent) == mount["mountPath"] and path.name in data["data"], var
    assert env["TOCSIN_DATA_DIR"] in {m["mountPath"] for m in
                                     dep["spec"]["template"]["spec"]["containers"][0][
                                         "volumeMounts"]}


def test_the_secret_examples_placeholders_are_refused_by_a_worker() -> None:
    """Applied unchanged, the example must stop the workers, not run them with a key
    everyone can read."""
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    for name in ("TOCSIN_PSEUDONYM_KEY", "TOCSIN_CHECKPOINT_KEY"):
        with pytest.raises(ValueError, match="at least 16 bytes"):
            TocsinSettings(**{name.removeprefix("TOCSIN_").lower():
                              secret["stringData"][name]})


def test_k8s_deployment_is_sized_and_selected_consistently() -> None:
    (dep,) = by_kind("Deployment")
    (settings,) = [d for d in by_kind("ConfigMap") if d["metadata"]["name"] == "tocsin-settings"]
    assert dep["spec"]["replicas"] <= int(settings["data"]["TOCSIN_PARTITIONS"])
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (svc,) = by_kind("Service")
    (pdb,) = by_kind("PodDisruptionBudget")
    (pm,) = by_kind("PodMonitor")
    for sel in (svc["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"],
                pm["spec"]["selector"]["matchLabels"]):
        assert sel.items() <= labels.items(), sel
    assert pdb["spec"]["maxUnavailable"] == 1
    (worker,) = dep["spec"]["template"]["spec"]["containers"]
    port = {p["name"]: p["containerPort"] for p in worker["ports"]}["metrics"]
    assert port == int(settings["data"]["TOCSIN_METRICS_PORT"])
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    res = worker["resources"]
    assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"]
    sec = dep["spec"]["template"]["spec"]["securityContext"]
    assert sec["runAsNonRoot"] and sec["runAsUser"] == 10001
    assert worker["securityContext"]["readOnlyRootFilesystem"]
    assert worker["args"] == exec_form("CMD")


# -- generated files ------------------------------------------------------------------------
def test_settings_reference_and_configmap_are_current() -> None:
    assert reference.main(["--check"]) == 0, "run: python -m streams.tools.reference"
    doc = (ROOT / "docs" / "settings.md").read_text()
    for name in SETTINGS:
        assert f"`{name}`" in doc, name
    for name, f in TocsinSettings.model_fields.items():
        assert f.description, f"TOCSIN_{name.upper()} has no description"


def test_the_reference_check_fails_when_a_setting_changes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    field = TocsinSettings.model_fields["batch_size"]
    monkeypatch.setattr(field, "description", "something else")
    assert reference.main(["--check"]) == 1


# -- the image's entrypoint, outside Docker, on the embedded broker --------------------------
@pytest.mark.integration
def test_entrypoint_runs_the_worker_with_the_documented_variables(
        kafka_bootstrap: str, tmp_path: Path) -> None:
    """`tocsin topics create` (the init container) and then ENTRYPOINT + CMD (`tocsin
    worker`), with the Dockerfile's ENV and the Kubernetes ConfigMap's settings; the data
    files are the ConfigMap's own content. Bounds: the worker joins within 60 s, its
    HEALTHCHECK command passes, it processes records, and on SIGTERM it writes a final
    checkpoint and exits 0 within the pods' 30 s grace period."""
    from streams.core.regions import RegionRegistry
    from streams.evaluation.replay_score import read_replay
    from streams.tools.broker import free_port
    from streams.tools.replay import produce
    from streams.tools.simulate import SimConfig, simulate

    (settings,) = [d for d in by_kind("ConfigMap") if d["metadata"]["name"] == "tocsin-settings"]
    (data,) = [d for d in by_kind("ConfigMap") if d["metadata"]["name"] == "tocsin-data"]
    etc = tmp_path / "etc-tocsin"
    etc.mkdir()
    for key, text in data["data"].items():
        (etc / key).write_text(text)
    env = {**os.environ, **docker_env(), **settings["data"]}
    for k, v in list(env.items()):
        if isinstance(v, str) and v.startswith("/etc/tocsin/"):
            env[k] = str(etc / v.removeprefix("/etc/tocsin/"))
    # as an operator enabling sharing grants does (commented out in the ConfigMap)
    env["TOCSIN_GRANTS"] = str(etc / "grants.yaml")
    port = free_port()
    tag = str(time.time_ns())[-8:]
    env.update({
        "TOCSIN_BROKER": kafka_bootstrap, "TOCSIN_REPLICATION_FACTOR": "1",
        "TOCSIN_APP_ID": f"tocsin-entry-{tag}", "TOCSIN_TOPIC_PREFIX": f"e{tag}.",
        "TOCSIN_DATA_DIR": str(tmp_path / "data"), "TOCSIN_METRICS_PORT": str(port),
        # no periodic checkpoint during the test: the one at SIGTERM must save and commit
        "TOCSIN_METRICS_ADDR": "127.0.0.1", "TOCSIN_CHECKPOINT_INTERVAL_S": "3600",
        "TOCSIN_ALERTMANAGER_URL": f"http://127.0.0.1:{free_port()}",
        "TOCSIN_GRAFANA_URL": f"http://127.0.0.1:{free_port()}",
        "TOCSIN_PSEUDONYM_KEY": "entrypoint-test-pseudonym-key",
        "TOCSIN_CHECKPOINT_KEY": "entrypoint-test-checkpoint-key",
    })
    bindir = Path(sys.executable).parent
    entry = [str(bindir / exec_form("ENTRYPOINT")[0])]
    init = subprocess.run([*entry, "topics", "create"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    assert "tocsin.checkpoints" in init.stdout and "tocsin.warnings.view." in init.stdout

    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*entry, *exec_form("CMD")], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "rebalance complete" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        (health,) = [a for i, a in dockerfile() if i == "HEALTHCHECK"]
        check = shlex.split(health.split(" CMD ", 1)[1])
        assert subprocess.run(check, env=env, timeout=10).returncode == 0

        s = TocsinSettings(broker=kafka_bootstrap, topic_prefix=env["TOCSIN_TOPIC_PREFIX"],
                           partitions=int(env["TOCSIN_PARTITIONS"]))
        registry = RegionRegistry.from_csv(etc / "regions.csv")
        sim = simulate(SimConfig(seed=5, days=4.0), registry)
        events = tmp_path / "events.jsonl"
        sim.write(events, None)
        asyncio.run(produce(s, read_replay(events)))
        deadline = time.monotonic() + 60
        received = 0.0
        while received < len(sim.events) and time.monotonic() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                received = sum(float(ln.rsplit(" ", 1)[1]) for ln in r.read().decode()
                               .splitlines() if ln.startswith("tocsin_events_received_total"))
            time.sleep(0.5)
        assert received == len(sim.events), log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text(errors="replace")
    assert rc == 0, text[-3000:]
    assert re.search(r"checkpoint \(shutdown\): partitions \[0, 1, 2, 3, 4, 5\], \d+ bytes, "
                     r"offsets committed", text), text[-3000:]
    # everything it processed is committed: a successor would start where it stopped
    from streams.tools.demo import wait_drained

    assert asyncio.run(wait_drained(s.model_copy(update={"app_id": env["TOCSIN_APP_ID"]}), 5))
    for secret in ("entrypoint-test-pseudonym-key", "entrypoint-test-checkpoint-key"):
        assert secret not in text


@pytest.mark.integration
def test_a_worker_refuses_to_start_without_its_topics(kafka_bootstrap: str,
                                                      tmp_path: Path) -> None:
    """Missing topics (or agent topics with another partition count) would let faust
    auto-create or split them: the worker exits 2 at once and says what to run."""
    env = {**os.environ, "TOCSIN_BROKER": kafka_bootstrap,
           "TOCSIN_TOPIC_PREFIX": f"missing{time.time_ns()}.", "TOCSIN_METRICS_PORT": "0",
           "TOCSIN_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "streams", "worker"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "topics missing" in proc.stderr and "tocsin topics create" in proc.stderr
