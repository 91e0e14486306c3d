"""The layer rule (docs/ARCHITECTURE.md): `export` -> `edge`, never back.

The runtime must install and import on a board without the exporter's toolchain, so no module
under edge/ may import the `export` package, directly or by name through importlib.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_MODULES = sorted((ROOT / "edge").rglob("*.py"))


def imported_names(path: Path) -> Iterator[Tuple[int, str]]:
    """(line, top-level package) of every absolute import, and of importlib calls with a literal name."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
              ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            yield node.lineno, str(node.args[0].value).split(".")[0]


def test_the_walk_sees_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import export.bundle\nfrom export import cli\nimportlib.import_module('export.plugin')\n")
    assert [name for _, name in imported_names(probe)] == ["export", "export", "export"]


@pytest.mark.parametrize("module", RUNTIME_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_never_imports_the_exporter(module: Path):
    upward = [f"line {line}" for line, name in imported_names(module) if name == "export"]
    assert not upward, f"{module.relative_to(ROOT)} imports the exporter ({', '.join(upward)}); edge/ must stand alone"
