"""Training runs on the tiny synthetic data: exact resume, checkpoint contents, NaN stop."""

import copy
import json
import math

import pytest
import torch

from gsf.engine import Callback, train
from gsf.engine import trainer as trainer_module
from gsf.engine.checkpoint import FORMAT, load_checkpoint
from gsf.engine.trainer import lr_factor, scaled_lr
from gsf.errors import NonFiniteLossError

from .conftest import Interrupt, StopAfter


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_start(self, config, out_dir, start_epoch):
        self.events.append(("start", start_epoch))

    def on_epoch_end(self, epoch, metrics, checkpoint_path):
        assert checkpoint_path.is_file()
        self.events.append(("epoch", epoch, metrics))

    def on_train_end(self, result):
        self.events.append(("end", result))


@pytest.mark.slow
def test_resume_is_exact(tiny_config, tmp_path):
    config = tiny_config()
    straight = Recorder()
    result = train(config, tmp_path / "straight", callbacks=[straight])
    with pytest.raises(Interrupt):
        train(config, tmp_path / "resumed", callbacks=[StopAfter(1)])
    resumed = Recorder()
    result_resumed = train(config, tmp_path / "resumed", resume=True, callbacks=[resumed])
    assert resumed.events[0] == ("start", 2)
    assert [e[1] for e in resumed.events if e[0] == "epoch"] == [2]

    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=1e-6, msg=key)
    for key in ("train_loss", "train_top1", "lr", "val_loss", "val_top1", "val_top5", "best_val_top1"):
        assert result[key] == pytest.approx(result_resumed[key], abs=1e-6), key
    assert a["step"] == b["step"] == 4  # 6 train videos, batch 3, 2 epochs

    # the lr of each epoch follows the schedule
    lines = [json.loads(x) for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    for m in lines:
        expected = scaled_lr(config) * lr_factor(int(m["epoch"]) - 1, epochs=2, warmup_epochs=1, warmup_start_factor=0.1)
        assert m["lr"] == pytest.approx(expected)
    assert [e[0] for e in straight.events] == ["start", "epoch", "epoch", "end"]
    assert straight.events[0] == ("start", 1)
    for key in ("train_loss", "train_top1", "lr", "clips_per_second", "val_loss", "val_top1", "val_top5",
                "val_mean_class_acc", "best_val_top1", "best_epoch", "epoch"):
        assert key in straight.events[1][2], key
    assert {"final_val_top1", "final_val_top5", "best_val_top1", "best_epoch"} <= set(result)

    # checkpoint contents, read back with weights_only=True
    assert a["format"] == FORMAT and a["epoch"] == 2
    assert set(a) >= {"model", "optimizer", "scheduler", "scaler", "epoch", "step", "rng", "best_val_top1",
                      "best_epoch", "config", "code_version"}
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in a["model"])
    assert a["config"] == config.to_dict()
    assert a["code_version"]["gsf"]
    assert set(a["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert (tmp_path / "straight" / "config.yaml").is_file()
    assert (tmp_path / "straight" / "checkpoints" / "best.pt").is_file()
    scores = (tmp_path / "straight" / "scores" / "val_epoch2.csv").read_text().splitlines()
    assert scores[0] == "video_id,label,score_0,score_1" and len(scores) == 1 + 2


def test_out_dir_with_a_run_needs_resume(tiny_config, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
    from gsf.errors import GSFConfigError

    with pytest.raises(GSFConfigError, match="--resume"):
        train(tiny_config(), tmp_path)


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_last_good_checkpoint(tiny_config, tmp_path, monkeypatch):
    real_loss = trainer_module.loss_fn
    calls = {"n": 0}

    def loss_nan_in_epoch_2(output, labels):
        calls["n"] += 1
        loss = real_loss(output, labels)
        return loss * math.nan if calls["n"] == 3 else loss  # 2 batches per epoch: batch 1 of epoch 2

    monkeypatch.setattr(trainer_module, "loss_fn", loss_nan_in_epoch_2)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 3 .*last\.pt"):
        train(tiny_config(), tmp_path)
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_partial_bn_freezes_every_batchnorm_but_the_first():
    from gsf.engine.trainer import apply_partial_bn, batch_norms
    from gsf.models import build_model

    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3)
    model.train()
    apply_partial_bn(model)
    norms = batch_norms(model)
    assert norms[0].training and all(p.requires_grad for p in norms[0].parameters())
    assert not any(bn.training for bn in norms[1:])
    assert not any(p.requires_grad for bn in norms[1:] for p in bn.parameters())


@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)])
def test_make_optimizer_builds_the_configured_kind_with_its_lr_and_decay(name, kind):
    from gsf.engine.trainer import make_optimizer

    params = [torch.nn.Parameter(torch.zeros(3))]
    optimizer = make_optimizer(params, optimizer=name, lr=0.02, momentum=0.9, weight_decay=1e-3)
    assert type(optimizer) is kind
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.02 and group["weight_decay"] == 1e-3
    if name == "sgd":
        assert group["momentum"] == 0.9


# What each optimizer keeps between steps (torch's state-dict names).
OPTIMIZER_STATE = {"sgd": {"momentum_buffer"}, "adamw": {"step", "exp_avg", "exp_avg_sq"}}


def assert_same_optimizer_state(actual: dict, expected: dict) -> None:
    """Two optimizer state dicts hold the same groups and, per parameter, bit-identical tensors."""
    assert actual["param_groups"] == expected["param_groups"]
    assert actual["state"].keys() == expected["state"].keys()
    for index, entry in expected["state"].items():
        assert actual["state"][index].keys() == entry.keys(), index
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(actual["state"][index][name], value), (index, name)
            else:
                assert actual["state"][index][name] == value, (index, name)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_a_resumed_run_restores_the_optimizer_state_and_ends_with_the_weights_of_a_straight_run(
        tiny_config, tmp_path, monkeypatch, optimizer):
    config = tiny_config(f"optim.optimizer={optimizer}", "optim.lr=0.003", "data.test_views=",
                         "runtime.num_threads=1")
    train(config, tmp_path / "straight")
    with pytest.raises(Interrupt):
        train(config, tmp_path / "resumed", callbacks=[StopAfter(1)])
    saved = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert saved["epoch"] == 1
    state = saved["optimizer"]["state"]
    num_params = len(saved["optimizer"]["param_groups"][0]["params"])
    assert len(state) == num_params  # every parameter was updated in epoch 1
    assert all(set(entry) == OPTIMIZER_STATE[optimizer] for entry in state.values())

    restored = []
    real_restore = trainer_module._Run._restore

    def restore_and_record(run):
        real_restore(run)
        restored.append(copy.deepcopy(run.optimizer.state_dict()))

    monkeypatch.setattr(trainer_module._Run, "_restore", restore_and_record)
    recorder = Recorder()
    train(config, tmp_path / "resumed", resume=True, callbacks=[recorder])
    assert recorder.events[0] == ("start", 2)
    assert len(restored) == 1
    assert_same_optimizer_state(restored[0], saved["optimizer"])

    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert straight["epoch"] == resumed["epoch"] == 2 and straight["step"] == resumed["step"] == 4
    assert straight["model"].keys() == resumed["model"].keys()
    for key, value in straight["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    assert_same_optimizer_state(resumed["optimizer"], straight["optimizer"])
