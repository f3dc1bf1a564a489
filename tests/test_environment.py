"""environment.yml and pyproject.toml pin the same packages at the same versions."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(requirements) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        if requirement.startswith("-e"):
            continue
        name, _, version = requirement.partition("==")
        assert version, f"{requirement!r} is not pinned with =="
        pins[name.strip().lower()] = version.strip()
    return pins


def test_environment_yml_lists_the_same_pins_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in environment["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert _pins(pip) == expected
    assert "python=3.11" in conda and "pip" in conda


def test_required_pins_are_the_supported_ones():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins(project["dependencies"])
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1" and pins["mlflow"] == "3.17.2"
