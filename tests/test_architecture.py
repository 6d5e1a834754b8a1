"""The package's layers import only from below them: no circles, the CLI on top of a Python API."""

from __future__ import annotations

import ast
from pathlib import Path

import mdrchca

PACKAGE = Path(mdrchca.__file__).parent

LAYER_RANK = {
    "errors": 0,
    "version": 0,
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
    "__main__": 9,
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
            elif name == "mdrchca":  # the package itself: everything it exposes sits above every layer
                found.add("__init__")
    return found


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["mdrchca", *parts])


def _top_level_imports(path: Path) -> set[str]:
    """Modules of the package ``path`` imports when it is loaded (not inside functions, not for type checking)."""
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("mdrchca"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mdrchca"))
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


def test_no_module_imports_the_package_itself_from_below() -> None:
    found = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if _layer(path) not in ("cli", "__init__") and "__init__" in _imported_layers(path)
    ]
    assert not found, f"'import mdrchca' below the top (import the module that defines the name): {found}"


def find_circles(graph: dict[str, set[str]]) -> list[str]:
    """Every import circle a depth-first walk of ``graph`` (module -> modules it imports) meets."""
    state: dict[str, int] = {}
    circles = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph.get(name, ())):
            if state.get(other) == 1:
                circles.append(" -> ".join([*trail[trail.index(other) :], other]))
            elif other not in state:
                visit(other, [*trail, other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return circles


def test_no_circle_among_the_modules() -> None:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {
        name: {m for m in _top_level_imports(path) if m in modules and m != name} for name, path in modules.items()
    }
    circles = find_circles(graph)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_a_model_imports_no_other_model() -> None:
    models = PACKAGE / "models"
    shared = {"mdrchca.models", "mdrchca.models.base"}
    crossing = []
    for path in sorted(models.rglob("*.py")):
        own = _module_name(path)
        own_package = own.rsplit(".", 1)[0] if path.name != "__init__.py" else own
        if path.parent == models and path.name == "__init__.py":
            continue  # the registry imports every model
        for other in _top_level_imports(path) | {m for m in _all_imports(path) if m.startswith("mdrchca.models")}:
            if not other.startswith("mdrchca.models.") or other in shared:
                continue
            if other.startswith("mdrchca.models.components") or other.startswith("mdrchca.models.base"):
                continue
            if own_package != "mdrchca.models" and other.startswith(own_package + "."):
                continue  # inside its own package (models/mdrchca/)
            crossing.append(f"{own} imports {other}")
    assert not crossing, "a model file imports another model (move the shared piece to components/):\n" + "\n".join(
        crossing
    )


def _all_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_checkers_see_a_circle_a_bare_import_and_a_model_import(tmp_path: Path) -> None:
    module = tmp_path / "run_folder.py"
    module.write_text("import mdrchca\n")
    assert "__init__" in _imported_layers(module)
    model = tmp_path / "vbpr.py"
    model.write_text("from mdrchca.models.lightgcn import LightGCN\n")
    assert "mdrchca.models.lightgcn" in _top_level_imports(model)
    assert find_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a -> b -> c -> a"]
    assert find_circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
