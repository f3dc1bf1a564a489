"""The import graph of our own packages (``gsf``, ``experiments``, ``analysis``) has no cycle, imports
inside functions included: each module can be read, and changed, knowing only the modules below it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gsf", "experiments", "analysis")


def module_files() -> dict[str, Path]:
    """``{"gsf.engine.trainer": path, "gsf.engine": path/__init__.py, ...}`` for every module."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _own_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of dotted ``name`` that is one of our modules (``gsf.ops.factory.x`` ->
    ``gsf.ops.factory``), or None for a third-party or standard-library name."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, int]]:
    """``(imported module, line)`` for every import statement of ours in ``path``, at any depth."""
    found = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            # "from gsf.engine import distributed" imports the module gsf.engine.distributed
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            own = _own_module(target, modules)
            if own is not None and own != module:
                found.add((own, node.lineno))
    return found


def find_cycle(graph: dict[str, set[tuple[str, int]]]) -> list[tuple[str, int]] | None:
    """One cycle as ``[(module, line of its import of the next), ...]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[tuple[str, int]] = []

    def visit(module: str) -> list[tuple[str, int]] | None:
        state[module] = 1
        for target, line in sorted(graph[module]):
            path.append((module, line))
            if state.get(target) == 1:
                start = next(i for i, (m, _) in enumerate(path) if m == target)
                return path[start:] + [(target, 0)]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
            path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_package_import_graph_has_no_cycle():
    modules = module_files()
    assert {"gsf.engine.trainer", "gsf.engine.evaluate", "experiments", "analysis"} <= set(modules)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(
        f"{m} (line {line})" if line else m for m, line in cycle)


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    # The checker itself, on a two-module package where the cycle hides in a function body.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg import b\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from pkg.a import x\n")
    modules = {"pkg": tmp_path / "pkg" / "__init__.py", "pkg.a": tmp_path / "pkg" / "a.py",
               "pkg.b": tmp_path / "pkg" / "b.py"}
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert graph["pkg.b"] == {("pkg.a", 2)}
    assert find_cycle(graph) == [("pkg.a", 1), ("pkg.b", 2), ("pkg.a", 0)]
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    import json\n")
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert find_cycle(graph) is None
