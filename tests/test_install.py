"""GSF Bench runs from a plain (non-editable) install, with no checkout around it: the wheel carries the shipped
grids, base configurations and the paper's numbers, and the commands find them inside the installed packages.

How the installed copy is made to be the one imported:

- the wheel is built (``pip wheel --no-deps --no-build-isolation``) from a copy of the project's build inputs
  (``pyproject.toml``, ``README.md`` and the three packages) in a temporary folder, so the build writes no
  ``build/`` or ``*.egg-info`` into the checkout; it is installed with ``pip install --no-deps --target DIR``;
- the commands run in a fresh interpreter (this one, ``sys.executable``) from an empty working folder, with a
  clean environment and ``-S -P``. The checkout's editable install is a ``__editable__*.pth`` file in
  site-packages whose import line appends a finder to ``sys.meta_path``; ``-S`` skips the ``site`` module, so
  no ``.pth`` file is processed and that finder never exists. ``PYTHONPATH`` then lists DIR first and this
  interpreter's site-packages after it (the dependencies: torch, Ray, ...), and ``-P`` keeps the working
  folder off ``sys.path``. Pytest's ``pythonpath = ["."]`` only changes this process's ``sys.path``, not the
  child's;
- each child checks this itself: the imported ``gsf``, ``experiments`` and ``analysis`` live under DIR, and no
  loaded module comes from the checkout.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "README.md", "gsf", "experiments", "analysis")
# Run first in every child: fail unless the packages (and every module loaded so far) come from the install.
CHECK_ORIGIN = (
    "import sys, gsf, experiments, analysis\n"
    "from pathlib import Path\n"
    "target, checkout = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()\n"
    "for package in (gsf, experiments, analysis):\n"
    "    assert Path(package.__file__).resolve().is_relative_to(target), package.__file__\n"
    "loaded = [getattr(m, '__file__', None) for m in list(sys.modules.values())]\n"
    "assert not [f for f in loaded if f and Path(f).resolve().is_relative_to(checkout)], 'a module from the checkout'\n"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel of this checkout installed with ``--target``; returns that folder."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(work / "dist"),
                    str(source)], check=True, capture_output=True, text=True)
    (wheel,) = (work / "dist").glob("gsf_bench-*.whl")
    target = work / "target"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, text=True)
    return target


def _run(target: Path, cwd: Path, *argv: str, code: str = "") -> subprocess.CompletedProcess:
    """``python -S -P -c CHECK_ORIGIN+code`` (or ``runpy`` of ``-m`` modules) with only DIR and this
    interpreter's site-packages on the path, from ``cwd``."""
    dependencies = [folder for folder in [*site.getsitepackages(), site.getusersitepackages()] if Path(folder).is_dir()]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join([str(target), *dependencies]), "PYTHONNOUSERSITE": "1"}
    program = CHECK_ORIGIN + (code or "import runpy; sys.argv = [sys.argv[0], *sys.argv[3:]]\n"
                                      "runpy.run_module('gsf.cli', run_name='__main__')\n")
    return subprocess.run([sys.executable, "-S", "-P", "-c", program, str(target), str(REPO), *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_an_installed_wheel_ships_grids_configs_and_paper_numbers_and_runs_from_anywhere(installed, tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    assert not (cwd / "gating_groups").exists()

    files = _run(installed, cwd, code=(
        "from gsf.shipped import configs_dir, grid_names, grids_dir\n"
        "from analysis.paper import PAPER_DIR, load_accuracy, load_complexity\n"
        "from experiments.bench_overhead import SYNTHETIC_CONFIG\n"
        "assert grids_dir().is_relative_to(target) and configs_dir().is_relative_to(target)\n"
        "assert {'demo', 'gating_groups'} <= set(grid_names()), grid_names()\n"
        "assert SYNTHETIC_CONFIG.is_file() and SYNTHETIC_CONFIG.is_relative_to(target)\n"
        "assert PAPER_DIR.is_relative_to(target) and len(load_accuracy()) > 0 and len(load_complexity()) > 0\n"
        "print('shipped files ok')\n"))
    assert files.returncode == 0, files.stderr[-3000:]
    assert "shipped files ok" in files.stdout

    demo = _run(installed, cwd, "demo", "--help")
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert "--videos-per-class" in demo.stdout

    sweep = _run(installed, cwd, "sweep", "gating_groups", "--dry-run")
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    grid = installed.resolve() / "experiments" / "grids" / "gating_groups.yaml"
    assert f"grid {grid}: study 'gsf-gating-groups'" in sweep.stdout
    assert all(f"groups={g},seed=0" in sweep.stdout for g in (1, 2, 4, 8))

    unknown = _run(installed, cwd, "sweep", "no_such_grid", "--dry-run")
    assert unknown.returncode == 2 and "'no_such_grid'" in unknown.stderr and "gating_groups" in unknown.stderr
