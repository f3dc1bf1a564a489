"""Every exception type is defined in gsf/errors.py, and user-reachable code raises those typed errors
(never a bare builtin such as ValueError, nor the GSFError base without its kind), so the command-line
handlers (``except GSFError``) catch everything a user can cause and print it without a traceback."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gsf", "experiments", "analysis")
BUILTIN_ERRORS = {name for name in dir(builtins)
                  if isinstance(getattr(builtins, name), type) and issubclass(getattr(builtins, name), Exception)}

# (file, enclosing function, exception): raises that no user input reaches, each with its reason.
ALLOWED = {
    ("gsf/__init__.py", "__getattr__", "AttributeError"): "module attribute protocol (lazy imports)",
    ("gsf/engine/__init__.py", "__getattr__", "AttributeError"): "module attribute protocol (lazy imports)",
    ("gsf/engine/config.py", "_coerce", "TypeError"): "a field annotation config.py does not handle: a bug there",
    ("gsf/models/weights.py", "WeightFile.hash_prefix", "RuntimeError"): "a malformed entry of the weights table",
    ("gsf/ops/base.py", "TemporalModule.forward_frames", "NotImplementedError"): "abstract method",
    # The Inception layer graphs are the suite's own transcribed tables (gsf/models/specs), checked as built.
    ("gsf/models/inception_graph.py", "_build_layer", "ValueError"): "malformed row of a transcribed graph table",
    ("gsf/models/inception_graph.py", "InceptionGraph.__init__", "ValueError"): "malformed transcribed graph table",
    # The temporal-module registry checks itself when imported: a kind or knob out of step is a package bug.
    ("gsf/ops/registry.py", "", "ImportError"): "registry and vocabulary list different kinds (module level)",
    ("gsf/ops/registry.py", "_all_knobs", "ImportError"): "one knob declared twice with different facts",
}


def _python_files():
    for package in PACKAGES:
        yield from sorted((REPO / package).rglob("*.py"))


def _raised_name(node: ast.Raise) -> str | None:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    if isinstance(exc, ast.Name):
        return exc.id
    if isinstance(exc, ast.Attribute):
        return exc.attr
    return None


def _raises(tree: ast.AST):
    """``(qualified name of the enclosing function, raised name, line)`` of every ``raise X``/``raise X(...)``."""
    def walk(node, scope):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield from walk(child, [*scope, child.name])
            else:
                if isinstance(child, ast.Raise) and child.exc is not None:
                    yield ".".join(scope), _raised_name(child), child.lineno
                yield from walk(child, scope)

    yield from walk(tree, [])


def bare_raises(path: Path, tree: ast.AST) -> list[str]:
    relative = path.relative_to(REPO).as_posix()
    found = []
    for scope, name, line in _raises(tree):
        if name in BUILTIN_ERRORS or name == "GSFError":
            if (relative, scope, name) not in ALLOWED:
                found.append(f"{relative}:{line}: raise {name} in {scope or '<module>'}")
    return found


def exception_classes(path: Path, tree: ast.AST) -> list[str]:
    """Classes deriving from an exception (a builtin one, or a name ending in Error/Exception)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else "" for b in node.bases]
            if any(b in BUILTIN_ERRORS or b.endswith(("Error", "Exception")) for b in bases):
                found.append(f"{path.relative_to(REPO).as_posix()}:{node.lineno}: class {node.name}({', '.join(bases)})")
    return found


def test_user_reachable_code_raises_only_our_typed_errors():
    found = []
    for path in _python_files():
        found += bare_raises(path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    assert not found, "raise a gsf.errors type (GSFConfigError, GSFDataError, ...) instead:\n" + "\n".join(found)


def test_every_exception_type_is_defined_in_gsf_errors():
    found = []
    for path in _python_files():
        if path != REPO / "gsf" / "errors.py":
            found += exception_classes(path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    assert not found, "define exception types in gsf/errors.py:\n" + "\n".join(found)


def test_the_allowlist_names_raises_that_exist():
    present = set()
    for path in _python_files():
        relative = path.relative_to(REPO).as_posix()
        present |= {(relative, scope, name) for scope, name, _ in _raises(ast.parse(path.read_text(encoding="utf-8")))}
    assert not set(ALLOWED) - present, f"stale allowlist entries: {sorted(set(ALLOWED) - present)}"


def test_the_scan_flags_a_bare_raise_and_a_base_class_raise(tmp_path):
    source = ("def f(x):\n    if x:\n        raise ValueError('bad')\n    raise GSFError('vague')\n"
              "class Local(RuntimeError):\n    pass\n")
    tree = ast.parse(source)
    path = REPO / "gsf" / "example.py"
    assert bare_raises(path, tree) == ["gsf/example.py:3: raise ValueError in f", "gsf/example.py:4: raise GSFError in f"]
    assert exception_classes(path, tree) == ["gsf/example.py:5: class Local(RuntimeError)"]


def test_every_error_type_is_a_gsf_error_with_a_builtin_parent_for_callers_catching_those():
    import gsf.errors as errors

    kinds = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, errors.GSFError)]
    assert len(kinds) >= 7
    for kind in kinds:
        if kind is not errors.GSFError:
            assert any(base in BUILTIN_ERRORS and base != "Exception" for base in (b.__name__ for b in kind.__mro__)), kind
