"""``local_workers_pythonpath``: what a local Ray's workers get on ``PYTHONPATH`` (no Ray started)."""

from __future__ import annotations

import os
from pathlib import Path

import gsf
from gsf.engine import worker_group

ROOT = Path(gsf.__file__).resolve().parents[1]  # the folder holding the gsf package this test imports


def test_a_checkout_goes_first_on_the_workers_path_before_the_callers(monkeypatch, tmp_path):
    import site

    monkeypatch.setattr(site, "getsitepackages", lambda: [str(tmp_path / "site-packages")])
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "extra"))
    assert worker_group.local_workers_pythonpath().split(os.pathsep) == [str(ROOT), str(tmp_path / "extra")]


def test_an_installed_package_adds_nothing_to_the_workers_path(monkeypatch, tmp_path):
    import site

    monkeypatch.setattr(site, "getsitepackages", lambda: [str(ROOT)])
    monkeypatch.delenv("PYTHONPATH", raising=False)
    assert worker_group.local_workers_pythonpath() == ""
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert worker_group.local_workers_pythonpath() == str(tmp_path)
