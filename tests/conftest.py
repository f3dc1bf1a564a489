"""Suite-wide collection rules.

- Tests marked ``gpu`` (pyproject's markers) are skipped where torch sees no CUDA device, so the suite passes
  on CPU-only machines and runs them where there is a GPU.
- Under pytest-xdist (``pytest -n N --dist loadgroup``, as ``.ci/run`` runs the suite) the tests that start
  Ray clusters, MLflow servers, browsers or torch.distributed process groups run one after another on one
  worker (the ``servers`` group): side by side they would contend for ports, Ray's session folders and the
  machine's cores in ways that no single test controls. Every other test runs on any worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# The trained colour model (the ``trained`` session fixture) that tests/inference and
# tests/experiments/test_run_logging.py share: one definition, one training per worker.
pytest_plugins = ("tests.inference.fixtures",)
SERVER_TESTS = (  # folders and files, relative to tests/
    "experiments/",
    "reliability/",
    "engine/test_distributed.py",
    "engine/test_recipe.py",
    "bench/test_overhead.py",
)
# Files inside a folder above that start no server (MLflow on a SQLite file, no Ray): they run on any worker.
SERVERLESS_FILES = ("experiments/test_run_logging.py",)


def _starts_servers(item: pytest.Item) -> bool:
    relative = Path(item.path).resolve().relative_to(TESTS).as_posix()
    if relative in SERVERLESS_FILES:
        return False
    return any(relative == entry or (entry.endswith("/") and relative.startswith(entry)) for entry in SERVER_TESTS)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _starts_servers(item):
            item.add_marker(pytest.mark.xdist_group("servers"))
    needing_cuda = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not needing_cuda:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked gpu); torch sees none here")
    for item in needing_cuda:
        item.add_marker(skip)
