"""The house rules of issue 17, kept: small modules, classes and functions; few top-level
modules in streams/; the worker never imports evaluation or benchmarks."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE, MAX_CLASS, MAX_FUNCTION = 400, 300, 60


def _offenders(package: str, root: Path = ROOT) -> list[str]:
    out = []
    for path in sorted((root / package).rglob("*.py")):
        src = path.read_text(encoding="utf-8")
        rel = path.relative_to(root)
        if src.count("\n") > MAX_MODULE:
            out.append(f"{rel}: {src.count(chr(10))} lines")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
                if n > limit:
                    out.append(f"{rel}:{node.lineno} {node.name}: {n} lines (max {limit})")
    return out


def test_modules_classes_and_functions_stay_small() -> None:
    assert _offenders("streams") + _offenders("detectors") == []


def test_the_size_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text("def f() -> None:\n" + "    x = 1\n" * 70)
    assert _offenders("pkg", tmp_path) == ["pkg/long.py:1 f: 71 lines (max 60)"]


def test_streams_keeps_at_most_six_top_level_modules() -> None:
    top = sorted(p.name for p in (ROOT / "streams").glob("*.py"))
    assert len(top) <= 6, top


def test_the_worker_and_cli_do_not_import_evaluation_or_benchmarks() -> None:
    code = ("import sys, streams.runtime.worker, streams.tools.cli; "
            "print(sorted(m for m in sys.modules if m.startswith(('streams.evaluation', "
            "'streams.bench'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
