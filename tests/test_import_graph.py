"""The import graph of our own packages (``gsf``, ``experiments``, ``analysis``) has no cycle, imports
inside functions included: each module can be read, and changed, knowing only the modules below it.

The packages are layers, bottom first ``gsf < experiments < analysis``: the library (model core, data, engine,
inference) imports neither experiments nor analysis; experiments (sweeps, MLflow logging, and the commands
that log to MLflow) imports gsf; analysis (reports, ``gsf demo``) imports both. Imports by name count too
(``importlib.import_module``, a child process's ``python -c`` code); only the ``gsf`` command's dispatch
tables name modules above them."""

from __future__ import annotations

import ast
import re
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


# --- the layer order -------------------------------------------------------------------------------------
# gsf < experiments < analysis. gsf (the library: model core, data, engine, inference, benchmarks of the model
# and the data) is the bottom layer; experiments (sweeps, MLflow run logging, and the commands that log to
# MLflow: gsf train, gsf eval, gsf sweep, gsf ui) builds on gsf; analysis (reports from the runs, and gsf demo,
# which drives a sweep and reports it) builds on both. A module imports only its own layer and the layers
# below, by an import statement (at any depth) or by name (importlib, a child process's code string). The
# dispatch tables are the one exception: gsf.cli.SUBCOMMANDS and gsf.bench.cli.BENCHMARKS name each command's
# module, in whichever layer it lives, and import only the chosen one.
LAYERS = ("gsf", "experiments", "analysis")  # bottom first
# Upward imports present today, as (importer, imported). The list may only shrink: the test fails on a new
# one and on an entry that no longer occurs, so a fix removes its entry.
KNOWN_UPWARD: set[tuple[str, str]] = set()  # (importer, imported) allowed against the order: none today
_CODE_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))", re.MULTILINE)


def named_imports_of(path: Path, modules: dict[str, Path]) -> set[tuple[str, int]]:
    """``(module, line)`` for our modules that ``path`` reaches by name rather than by an import statement: a
    string that is a module's dotted name (``importlib.import_module("experiments.sweep_cli")``) or a code string
    with an import line (``python -c "from experiments.runner import ..."``). Docstrings are not code."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str) or id(node) in docstrings:
            continue
        # a dotted name only: a bare "experiments" is more often a folder of a path than the package
        dotted = "." in node.value and node.value in modules
        names = [node.value] if dotted else [a or b for a, b in _CODE_IMPORT.findall(node.value)]
        for name in names:
            own = _own_module(name, modules)
            if own is not None:
                found.add((own, node.lineno))
    return found


def layer_of(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def dispatch_tables() -> dict[str, set[str]]:
    """``{dispatcher module: the command modules its table names}``."""
    from gsf.bench.cli import BENCHMARKS
    from gsf.cli import SUBCOMMANDS

    return {"gsf.cli": {module for module, _ in SUBCOMMANDS.values()},
            "gsf.bench.cli": {module for module, _ in BENCHMARKS.values()}}


def upward_imports(modules: dict[str, Path], dispatchers: dict[str, set[str]]) -> dict[tuple[str, str], list[int]]:
    """``{(importer, imported): [lines]}`` for every import, by statement or by name, of a layer above the
    importer's. ``dispatchers`` maps a dispatch table's module to the command modules it may name."""
    found: dict[tuple[str, str], list[int]] = {}
    for module, path in modules.items():
        edges = imports_of(module, path, modules) | named_imports_of(path, modules)
        for target, line in sorted(edges):
            if layer_of(target) <= layer_of(module) or target in dispatchers.get(module, ()):
                continue
            found.setdefault((module, target), []).append(line)
    return found


def test_no_layer_imports_a_layer_above_it():
    modules = module_files()
    dispatchers = dispatch_tables()
    assert {"analysis.report_cli", "experiments.sweep_cli", "experiments.train_cli"} <= dispatchers["gsf.cli"]
    assert set(dispatchers["gsf.cli"]) | set(dispatchers["gsf.bench.cli"]) <= set(modules)
    found = upward_imports(modules, dispatchers)
    new = {edge: lines for edge, lines in found.items() if edge not in KNOWN_UPWARD}
    assert not new, f"upward imports (the layers, bottom first: {' < '.join(LAYERS)}): " + "; ".join(
        f"{importer} (lines {lines}) imports {target}" for (importer, target), lines in sorted(new.items()))
    gone = KNOWN_UPWARD - set(found)
    assert not gone, f"no longer imported upward, remove from KNOWN_UPWARD: {sorted(gone)}"


def test_the_layer_check_sees_imports_by_name_and_in_code_strings(tmp_path):
    # The checker itself: a library module reaching the layer above through importlib and through `python -c`.
    for package in ("gsf", "experiments"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "experiments" / "runner.py").write_text("")
    (tmp_path / "gsf" / "bench.py").write_text(
        '"""Docstrings may say: from experiments.runner import start_ray."""\n'
        'import importlib\n'
        'importlib.import_module("experiments.runner")\n'
        'CODE = "import sys\\nfrom experiments.runner import start_ray\\n"\n')
    modules = {"gsf": tmp_path / "gsf" / "__init__.py", "gsf.bench": tmp_path / "gsf" / "bench.py",
               "experiments": tmp_path / "experiments" / "__init__.py",
               "experiments.runner": tmp_path / "experiments" / "runner.py"}
    assert named_imports_of(modules["gsf.bench"], modules) == {("experiments.runner", 3), ("experiments.runner", 4)}
    assert upward_imports(modules, {}) == {("gsf.bench", "experiments.runner"): [3, 4]}
    # a dispatch table may name a command module above it, and only the modules it dispatches to
    assert upward_imports(modules, {"gsf.bench": {"experiments.runner"}}) == {}
    assert upward_imports(modules, {"gsf.bench": {"experiments"}}) == {("gsf.bench", "experiments.runner"): [3, 4]}
    # and the order runs one way: the upper layer may import the lower
    (tmp_path / "experiments" / "runner.py").write_text("from gsf import bench\n")
    assert upward_imports(modules, {}) == {("gsf.bench", "experiments.runner"): [3, 4]}
