"""Security properties, checked on the source (AST scans of the packages) and on the argument lists the
suite builds: servers on loopback unless the user names a host, weights-only checkpoint loads, safe YAML,
no shell built from strings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGES = ("gsf", "experiments", "analysis")


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    """``torch.load`` for ``torch.load(...)``, ``yaml.safe_load`` for ``yaml.safe_load(...)``."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(REPO)}:{node.lineno}"


def test_the_scan_sees_the_packages():
    names = {p.relative_to(REPO).as_posix() for p in _sources()}
    assert {"gsf/engine/checkpoint.py", "experiments/ui.py", "analysis/report_cli.py"} <= names


def test_every_torch_load_is_weights_only():
    found, bad = [], []
    for path in _sources():
        for call in _calls(path):
            if _name(call.func) == "torch.load":
                found.append(_where(path, call))
                value = _keyword(call, "weights_only")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    bad.append(_where(path, call))
    assert found, "no torch.load found: the scan is broken"
    assert not bad, f"torch.load without weights_only=True at {bad}"


def test_no_module_imports_torch_load_by_name():
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "torch":
                assert "load" not in {a.name for a in node.names}, _where(path, node)


def test_yaml_is_only_read_with_safe_load():
    bad = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in ("yaml.load", "yaml.unsafe_load", "yaml.full_load",
                                                                     "yaml.load_all", "yaml.unsafe_load_all"):
                bad.append(_where(path, node))
            if isinstance(node, ast.Attribute) and _name(node) in ("yaml.Loader", "yaml.UnsafeLoader",
                                                                    "yaml.FullLoader"):
                bad.append(_where(path, node))
            if isinstance(node, ast.ImportFrom) and node.module == "yaml":
                names = {a.name for a in node.names}
                if names & {"load", "unsafe_load", "full_load", "Loader", "UnsafeLoader", "FullLoader"}:
                    bad.append(_where(path, node))
    assert not bad, f"unsafe YAML loading at {bad}"


def test_no_shell_commands():
    bad = []
    for path in _sources():
        for call in _calls(path):
            name = _name(call.func)
            if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
                bad.append(f"{_where(path, call)} {name}")
            if name.startswith("subprocess.") or name in ("Popen", "run", "check_output", "check_call", "call"):
                shell = _keyword(call, "shell")
                if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                    bad.append(f"{_where(path, call)} {name}(shell=...)")
                if name.startswith("subprocess.") and call.args and isinstance(call.args[0], (ast.Constant,
                                                                                             ast.JoinedStr)):
                    bad.append(f"{_where(path, call)} {name} with a command string")
    assert not bad, f"shell commands: {bad}"


def test_gsf_ui_binds_to_loopback_unless_a_host_is_given():
    import argparse

    from experiments import ui, ui_cli

    parser = argparse.ArgumentParser()
    ui_cli.configure_parser(parser)
    args = parser.parse_args([])
    assert args.host == "127.0.0.1"
    argv = ui.server_command("sqlite:////x/mlflow.db", args.host, args.port)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    chosen = parser.parse_args(["--host", "0.0.0.0"])
    argv = ui.server_command("sqlite:////x/mlflow.db", chosen.host, chosen.port)
    assert argv[argv.index("--host") + 1] == "0.0.0.0"


def test_a_local_ray_binds_to_loopback_without_a_dashboard(monkeypatch):
    import ray

    from experiments import runner

    seen = {}
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.update(kwargs))
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    temp_dir = runner.start_ray(None)
    try:
        assert seen["_node_ip_address"] == "127.0.0.1" and seen["include_dashboard"] is False
        assert "address" not in seen
    finally:
        Path(temp_dir).rmdir()
    seen.clear()
    assert runner.start_ray("10.0.0.5:6379") is None
    assert seen == {"address": "10.0.0.5:6379", "log_to_driver": True}


@pytest.mark.parametrize("module", ["experiments.ui_cli", "experiments.sweep_cli"])
def test_cli_defaults_name_no_public_address(module):
    import argparse
    import importlib

    parser = argparse.ArgumentParser()
    importlib.import_module(module).configure_parser(parser)
    for action in parser._actions:
        assert action.default not in ("0.0.0.0", "::"), f"{module} --{action.dest} defaults to a public address"
