"""The package's layers import only from below them: no circles, the CLI on top of a Python API."""

from __future__ import annotations

import ast
from pathlib import Path

import mdrchca

PACKAGE = Path(mdrchca.__file__).parent

LAYER_RANK = {
    "errors": 0,
    "io": 1,
    "config": 1,
    "data": 2,
    "features": 3,
    "evaluation": 3,
    "models": 4,
    "training": 5,
    "experiments": 6,
    "cli": 7,
    "__init__": 8,
}


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0].removesuffix(".py")


def _imported_layers(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mdrchca" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_belongs_to_a_known_layer() -> None:
    layers = {_layer(path) for path in PACKAGE.rglob("*.py")}
    assert layers <= set(LAYER_RANK), f"new top-level module(s) {layers - set(LAYER_RANK)}: give them a rank"


def test_layers_import_only_from_below() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(path)
        for other in _imported_layers(path) - {layer}:
            if LAYER_RANK[other] >= LAYER_RANK[layer]:
                upward.append(f"{path.relative_to(PACKAGE)} ({layer}) imports {other}")
    assert not upward, "imports that go up or sideways:\n" + "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "config.py"
    module.write_text("def f():\n    from mdrchca.models import get_model_class\n")
    assert _imported_layers(module) == {"models"}
