"""The ``gsf`` command: every subcommand the README lists is wired, help works, errors exit non-zero."""

import re
from pathlib import Path

import pytest

from gsf.cli import SUBCOMMANDS, main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_readme_subcommand_is_registered():
    listed = set(re.findall(r"^\| `gsf (\w+)", README.read_text(), flags=re.MULTILINE))
    assert listed, "README lists no gsf subcommand"
    assert listed <= set(SUBCOMMANDS), f"README lists unknown subcommands: {listed - set(SUBCOMMANDS)}"


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: gsf" in capsys.readouterr().out


def test_models_lists_variants(capsys):
    assert main(["models", "resnet50_*"]) == 0
    out = capsys.readouterr().out
    assert "resnet50_gsf " in out and "resnet50_tsm " in out
    assert main(["models", "nothing_like_this*"]) == 1


def test_a_reader_that_stops_early_ends_the_command_quietly():
    """``gsf models | head -1``: no BrokenPipeError traceback, exit status 1 (the output was cut)."""
    import subprocess
    import sys

    writer = subprocess.Popen([sys.executable, "-m", "gsf", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer.stdout.close()  # the reader is gone before the command writes (it takes a moment to start)
    _, err = writer.communicate(timeout=120)
    assert b"BrokenPipeError" not in err and b"Traceback" not in err, err.decode()
    assert writer.returncode == 1


def test_every_subcommand_module_is_named_for_its_command_and_every_command_module_is_registered():
    """A subcommand's entry module is ``<package>/<command>_cli.py``, or ``<package>/cli.py`` when it is the
    package's one subcommand (``gsf.models.cli``); no other module of ours is named so."""
    from collections import Counter

    per_package = Counter(module.rpartition(".")[0] for module, _ in SUBCOMMANDS.values())
    for command, (module, _) in SUBCOMMANDS.items():
        package, _, name = module.rpartition(".")
        assert name == f"{command}_cli" or (name == "cli" and per_package[package] == 1), (
            f"gsf {command}: its module {module} is not named {package}.{command}_cli")
    repo = README.parent
    named = {".".join(path.relative_to(repo).with_suffix("").parts)
             for package in ("gsf", "experiments", "analysis") for path in (repo / package).rglob("*.py")
             if path.stem == "cli" or path.stem.endswith("_cli")}
    assert named - {"gsf.cli"} == {module for module, _ in SUBCOMMANDS.values()}
