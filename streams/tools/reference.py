"""Generated operator files: the configuration reference (docs/settings.md, from
:class:`TocsinSettings`) and the Kubernetes ConfigMap of the data files
(deploy/k8s/configmap-data.yaml, from streams/data).

``python -m streams.tools.reference`` rewrites both; ``--check`` exits 1 when either differs
(tests/streams/test_deploy.py runs the check)."""

from __future__ import annotations

import json
import sys
import typing
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from streams.core.settings import DEFAULT_REGISTRY, TocsinSettings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "settings.md"
CONFIGMAP = ROOT / "deploy" / "k8s" / "configmap-data.yaml"
DATA = Path(__file__).resolve().parents[1] / "data"
#: ConfigMap key -> packaged file (mounted at /etc/tocsin in deploy/k8s/deployment.yaml)
DETECTOR_DATA = ROOT / "detectors" / "data"
DATA_FILES = {"regions.csv": DATA / "regions.csv",
              "scenarios.yaml": DETECTOR_DATA / "scenarios.yaml",
              "grants.yaml": DATA / "grants.yaml", "holidays.yaml": DETECTOR_DATA / "holidays.yaml",
              "signals.yaml": DATA / "signals.yaml"}

HEADER = """\
# Configuration reference

Generated from `streams/settings.py` by `python -m streams.tools.reference`; do not edit by hand
(`tests/streams/test_deploy.py` fails when this file and the settings object differ).

Every setting is an environment variable with the `TOCSIN_` prefix; a `.env` file in the
working directory is read too. Secrets (`SecretStr`) are never logged or printed; give them
to the worker from your secret store (Kubernetes: `deploy/k8s/secret.example.yaml`). Invalid values
stop the worker at start with the variable's name and what is wrong; a `TOCSIN_` variable that
is no setting gets a warning naming the nearest one (`streams/core/environment.py`).
"""


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"JSON object: {_type(key)} to {_type(value)}"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args and origin is not None:
        inner = " or ".join(_type(a) for a in args)
        return f"{inner}, optional" if type(None) in typing.get_args(annotation) else inner
    names = {str: "text", int: "integer", float: "number", bool: "true/false",
             Path: "path", SecretStr: "secret", datetime: "ISO 8601 time"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(name: str, f: FieldInfo) -> str:
    d = f.get_default(call_default_factory=True)
    if isinstance(d, dict):
        return f"`{json.dumps(d)}`" if d else "`{}` (none)"
    if d is None:
        return "unset"
    if isinstance(d, Path):
        if d == DEFAULT_REGISTRY:
            return "`streams/data/regions.csv` (packaged)"
        return f"`{d}`"
    if isinstance(d, datetime):
        return f"`{d.isoformat()}`"
    if isinstance(d, bool):
        return f"`{str(d).lower()}`"
    if isinstance(d, float) and d.is_integer():
        return f"`{int(d)}`"
    return f"`{d}`" if d != "" else "empty"


def _bounds(f: FieldInfo) -> str:
    out = []
    for m in f.metadata:
        for attr, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            v = getattr(m, attr, None)
            if v is not None:
                out.append(f"{sym} {v}")
    return f" ({', '.join(out)})" if out else ""


def render() -> str:
    rows = ["| variable | type | default | meaning |", "|---|---|---|---|"]
    for name, f in TocsinSettings.model_fields.items():
        meaning = (f.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `TOCSIN_{name.upper()}` | {_type(f.annotation)}{_bounds(f)} | "
                    f"{_default(name, f)} | {meaning} |")
    return HEADER + "\n" + "\n".join(rows) + "\n"


def render_configmap() -> str:
    """The data files as one ConfigMap (literal blocks, byte for byte)."""
    out = ["# Generated from streams/data by `python -m streams.tools.reference`; do not edit "
           "by hand.",
           "# Mounted at /etc/tocsin (deploy/k8s/deployment.yaml). Edit the files in",
           "# streams/data (or your own copies) and regenerate.",
           "apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: tocsin-data", "data:"]
    for key, path in DATA_FILES.items():
        text = path.read_text(encoding="utf-8")
        if any(ln != ln.rstrip() for ln in text.splitlines()) or "\t" in text:
            raise ValueError(f"{path}: trailing white space or tabs cannot be carried in a "
                             "YAML literal block; remove them")
        out.append(f"  {key}: |" + ("" if text.endswith("\n") else "-"))
        out.extend(f"    {ln}" if ln else "" for ln in text.splitlines())
    return "\n".join(out) + "\n"


def outputs() -> dict[Path, str]:
    return {DOC: render(), CONFIGMAP: render_configmap()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    stale = [p for p, text in outputs().items()
             if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if "--check" in args:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is out of date: run python -m streams.tools.reference",
                  file=sys.stderr)
        return 1 if stale else 0
    for p, text in outputs().items():
        p.write_text(text, encoding="utf-8")
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
