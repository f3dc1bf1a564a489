import os

import pytest
import torch

from gsf.engine import checkpoint as ckpt
from gsf.engine.checkpoint import (
    FORMAT,
    check_compatible,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unwrap_model,
)
from gsf.engine.config import load_config, model_kwargs
from gsf.errors import GSFCheckpointError
from gsf.models import build_model


def test_rng_state_round_trips_through_a_weights_only_load(tmp_path):
    import random

    import numpy as np

    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    save_checkpoint({"rng": rng_state()}, tmp_path / "r.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    torch.testing.assert_close(got[0], expected[0])
    assert (got[1] == expected[1]).all() and got[2] == expected[2]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(4)}, path)
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    with pytest.raises(GSFCheckpointError, match=r"last.pt.*No space left"):
        save_checkpoint({"epoch": 2, "w": torch.zeros(4)}, path)
    monkeypatch.undo()
    kept = load_checkpoint(path)
    assert kept["epoch"] == 1 and torch.equal(kept["w"], torch.ones(4))
    assert os.listdir(tmp_path) == ["last.pt"]  # no temporary file left behind


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(GSFCheckpointError, match="bad.pt cannot be read"):
        load_checkpoint(bad)
    with pytest.raises(GSFCheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    tiny = ["model.backbone=resnet_tiny", "model.pretrained=none"]
    gsf_cfg = load_config(None, [*tiny, "model.temporal=gsf"], check=False)
    tsn_cfg = load_config(None, [*tiny, "model.temporal=none"], check=False)
    gsf_model = build_model(**model_kwargs(gsf_cfg, num_classes=2))
    tsn_model = build_model(**model_kwargs(tsn_cfg, num_classes=2))
    payload = {"format": FORMAT, "model": gsf_model.state_dict(), "config": gsf_cfg.to_dict()}
    with pytest.raises(GSFCheckpointError, match=r"another architecture \(model.temporal: checkpoint 'gsf' vs config 'none'"):
        check_compatible(payload, tsn_cfg.to_dict()["model"], tsn_model, path="x.pt")
    # same config section but other weights (e.g. another class count): state-dict keys/shapes compared
    other = build_model(**model_kwargs(gsf_cfg, num_classes=5))
    with pytest.raises(GSFCheckpointError, match=r"shape mismatch \[head.bias, head.weight\]"):
        check_compatible(payload, gsf_cfg.to_dict()["model"], other, path="x.pt")
    check_compatible(payload, gsf_cfg.to_dict()["model"], gsf_model, path="x.pt")


def test_unwrap_model_removes_compile_wrapper():
    model = torch.nn.Linear(2, 2)
    wrapped = torch.nn.Module()
    wrapped._orig_mod = model
    assert unwrap_model(wrapped) is model
    assert unwrap_model(torch.nn.DataParallel(model)) is model
