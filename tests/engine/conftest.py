"""Fixtures: a tiny synthetic data set (2 classes, 6 train + 2 validation videos of 8 frames, 32 px)
and a CPU-sized configuration on it (resnet_tiny, 4 frames, batch 3, deterministic)."""

from __future__ import annotations

import pytest

from gsf.data import synthesize_dataset
from gsf.engine import Callback
from gsf.engine.config import load_config


@pytest.fixture(autouse=True)
def no_tracking_from_the_environment(monkeypatch):
    """Engine tests never log to MLflow: an ``MLFLOW_TRACKING_URI`` left by the caller's shell or an earlier test
    would make ``gsf train`` log (and ``--nproc`` refuse to start)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthesize_dataset(root, num_classes=2, videos_per_class=4, num_frames=8, size=32, seed=1, val_fraction=0.25)
    return root


TINY = [
    "model.backbone=resnet_tiny", "model.pretrained=none", "data.dataset=ssv2", "data.num_frames=4", "data.input_size=32",
    "data.batch_size=3", "data.num_workers=0", "data.randaugment=false", "optim.epochs=2",
    "optim.warmup_epochs=1", "optim.base_batch_size=3", "runtime.eval_every=1", "runtime.progress=false",
    "runtime.deterministic=true", "runtime.device=cpu",
]


@pytest.fixture
def tiny_config(synth_root):
    def make(*overrides: str):
        return load_config(None, [*TINY, f"data.root={synth_root}", *overrides])

    return make


@pytest.fixture(autouse=True)
def no_process_group_left_behind():
    """A test that initialises torch.distributed in this process must not leave the group to later tests
    (a later train() would take itself for a rank of it)."""
    yield
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class Interrupt(Exception):
    """Raised by :class:`StopAfter`: stands for the process being killed."""


class StopAfter(Callback):
    """Simulates a run killed right after epoch ``epoch`` was checkpointed."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, epoch, metrics, checkpoint_path):
        if epoch == self.epoch:
            raise Interrupt
