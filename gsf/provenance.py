"""Which code, and which processor, produced a result: the one definition shared by checkpoints (``code_version`` entry) and
MLflow runs (tag ``gsf.code_version``), so a checkpoint and its run always name the same code."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]  # the repository root when gsf runs from a git checkout


def git_commit(repo: str | Path | None = None) -> str | None:
    """The git commit of the checkout (default: the one this package runs from), with ``-dirty`` appended
    when tracked files differ from it, outside ``results/`` (what the suite's own commands write: a demo run
    rewrites results/demo, which changes no code); None outside a git checkout or without git, and None where
    ``repo`` is not the root of its checkout (a package installed into a virtual environment that happens to
    lie inside some other repository is not that repository's code)."""
    repo = Path(repo) if repo is not None else _CHECKOUT
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=repo, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        if not top or Path(top).resolve() != repo.resolve():
            return None
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results"], cwd=repo, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("-dirty" if dirty else "")) if commit else None


def code_version(repo: str | Path | None = None) -> str:
    """:func:`git_commit`, else the installed package's version (``"gsf-bench 0.1.0"``)."""
    commit = git_commit(repo)
    if commit is not None:
        return commit
    import gsf

    return f"gsf-bench {gsf.__version__}"


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what :mod:`platform` knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
