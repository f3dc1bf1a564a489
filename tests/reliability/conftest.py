"""Shared fixtures of the reliability tests: a tiny synthetic data set, a CPU-sized configuration file on
it, and ``gsf`` run in-process with its exit code and output."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """2 classes (a time-reversed pair), 3 videos each (2 train + 1 validation), 8 frames of 32 px."""
    from gsf.data import synthesize_dataset

    root = tmp_path_factory.mktemp("tiny_synth")
    synthesize_dataset(root, num_classes=2, videos_per_class=3, num_frames=8, size=32, seed=0, val_fraction=0.34)
    return root


def write_config(path: Path, root: Path, temporal: str = "tsm") -> Path:
    """resnet_tiny, 4 frames, batch 2, one epoch on CPU. TSM by default: these tests are about the suite's
    handling of bad input, not about the GSF operator (rows that are about GSF set it explicitly)."""
    path.write_text(
        f"model: {{backbone: resnet_tiny, temporal: {temporal}, pretrained: none}}\n"
        f"data: {{dataset: ssv2, root: '{root}', num_frames: 4, input_size: 32, batch_size: 2, num_workers: 0, "
        "randaugment: false}\n"
        "optim: {epochs: 1, warmup_epochs: 0, base_batch_size: 2}\n"
        "runtime: {device: cpu, progress: false, eval_every: 1, num_threads: 1}\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(tmp_path, tiny_root) -> Path:
    return write_config(tmp_path / "tiny.yaml", tiny_root)


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def gsf(capsys):
    """``gsf ARGS...`` through :func:`gsf.cli.main`: its exit code, stdout and stderr."""
    from gsf.cli import main

    def run(*argv: str) -> Outcome:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
