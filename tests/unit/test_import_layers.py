"""Dependencies point one way: no module imports what sits above it (imports inside functions
count too: they are the same dependency, only later)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("serving/stack.py", "intentrec.cli"),  # the CLI sits above the stack it drives
        ("models_export/index.py", "models_export.bundle"),  # the bundle reads the index
        ("models_export/index.py", "models_export.index_build"),  # search is below building
        *((str(p.relative_to(ROOT)), "ranker") for p in sorted((ROOT / "serving").rglob("*.py"))),
    ],
)
def test_a_module_does_not_import_what_sits_above_it(module: str, forbidden: str) -> None:
    imported = imported_modules(ROOT / module)
    assert not {name for name in imported if name == forbidden or name.startswith(forbidden + ".")}


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from intentrec.cli import app\n    return app\n")
    assert "intentrec.cli" in imported_modules(source)
