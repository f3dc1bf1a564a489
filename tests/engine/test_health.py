"""Training health: gradient norms and clipping per epoch, what GSF routes per stage, "did not train"."""

import json
import math

import pytest
import torch
from torch import nn

from gsf.engine import train
from gsf.engine.health import GradientRecord, did_not_train, epoch_leaving_chance, per_stage, stage_of, temporal_module_statistics
from gsf.models import build_model


def test_gradient_record_counts_the_steps_above_the_clip_norm():
    record = GradientRecord(clip_norm=20.0)
    for norm in (1.0, 30.0, 5.0, 20.0):
        record.add(norm)
    assert record.metrics() == {"grad_norm_mean": 14.0, "grad_norm_max": 30.0, "clipped_share": 0.25}
    unclipped = GradientRecord(clip_norm=None)
    unclipped.add(1e6)
    assert unclipped.metrics()["clipped_share"] == 0.0
    assert GradientRecord(clip_norm=1.0).metrics() == {}


@pytest.mark.parametrize(("losses", "expected"), [
    ([1.40, 1.43, 1.39, 1.38], True),       # at ln 4 = 1.386 after the warm-up epoch
    ([1.40, 1.43, 1.39, 1.20], False),      # one epoch below 0.9 ln 4 = 1.248: it learned something
    ([1.40, 0.70, 0.69, 0.68], False),      # TSN on time-reversed pairs: ln 2, half of chance
    ([1.40], None),                         # nothing after the warm-up: cannot tell
])
def test_did_not_train_means_every_post_warmup_loss_at_chance(losses, expected):
    assert did_not_train(losses, num_classes=4, warmup_epochs=1) is expected


def test_a_warmup_epoch_at_chance_does_not_count():
    assert did_not_train([1.39, 0.5], num_classes=4, warmup_epochs=1) is False
    assert did_not_train([0.5, 1.39], num_classes=4, warmup_epochs=1) is True


def test_epoch_leaving_chance_is_the_first_epoch_below_the_chance_share_of_ln_k():
    bound = 0.9 * math.log(4)
    assert epoch_leaving_chance([1.39, 1.41, bound + 1e-6, bound - 1e-6, 0.2], num_classes=4) == 4
    assert epoch_leaving_chance([0.5, 1.39], num_classes=4) == 1
    assert epoch_leaving_chance([1.39, float("nan"), 1.38], num_classes=4) is None
    assert epoch_leaving_chance([0.1], num_classes=1) is None


def test_stage_of_names_the_backbone_child():
    assert stage_of("backbone.layer3.1.temporal_after_conv3") == "layer3"
    assert stage_of("backbone.inception_4a.temporal_1x1") == "inception_4a"


def _gsf_with_constant_maps(gate_bias: dict[str, float], fusion_bias: float, groups: int = 2):
    """A tiny GSF model whose gate is tanh(gate_bias[stage]) and whose fusion weight is sigmoid(fusion_bias)
    everywhere: zero conv weights, constant biases."""
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3, groups=groups)
    for name, module in model.named_modules():
        if hasattr(module, "internal_maps"):
            nn.init.zeros_(module.conv3D.weight)
            nn.init.constant_(module.conv3D.bias, gate_bias[stage_of(name)])
            for i in range(1, groups + 1):
                conv = getattr(module, f"channel_conv{i}")
                nn.init.zeros_(conv.weight)
                nn.init.constant_(conv.bias, fusion_bias)
    return model


def test_stage_statistics_are_the_gate_and_fusion_values_of_each_stage():
    biases = {"layer1": 0.5, "layer2": -1.0, "layer3": 3.0, "layer4": -4.0}
    model = _gsf_with_constant_maps(biases, fusion_bias=0.7)
    stats = temporal_module_statistics(model, torch.randn(2, 4, 3, 32, 32))
    gate_abs = per_stage(stats, "gate_abs")
    assert gate_abs == pytest.approx({s: math.tanh(abs(b)) for s, b in biases.items()}, rel=1e-5)
    # tanh(3) = 0.9951 and tanh(4) = 0.9993 are saturated (> 0.99); tanh(0.5) and tanh(1) are not
    assert per_stage(stats, "gate_saturated") == {"layer1": 0.0, "layer2": 0.0, "layer3": 1.0, "layer4": 1.0}
    fusion = per_stage(stats, "fusion_weight")
    assert fusion == pytest.approx({s: 1 / (1 + math.exp(-0.7)) for s in biases}, rel=1e-5)


def test_stage_statistics_leave_the_model_as_they_found_it():
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stats = temporal_module_statistics(model, torch.randn(2, 4, 3, 32, 32))
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(stats) == {f"{m}/layer{s}" for m in ("gate_abs", "gate_saturated", "fusion_weight") for s in (1, 2, 3, 4)}


def test_models_without_gates_have_no_routing_statistics():
    for temporal in ("none", "tsm"):
        model = build_model(backbone="resnet_tiny", temporal=temporal, num_classes=3)
        assert temporal_module_statistics(model, torch.randn(1, 4, 3, 32, 32)) == {}
    fixed = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3, gate="plus_one", fusion="sum")
    assert temporal_module_statistics(fixed, torch.randn(1, 4, 3, 32, 32)) == {}


@pytest.mark.slow
def test_a_gsf_run_records_its_health_every_epoch_and_the_best_checkpoints_routing(tiny_config, tmp_path):
    # A clip norm far below any real gradient norm: every step is clipped.
    result = train(tiny_config("model.temporal=gsf", "optim.clip_grad_norm=1e-6"), tmp_path)
    epochs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(epochs) == 2
    for metrics in epochs:
        assert metrics["clipped_share"] == 1.0
        assert metrics["grad_norm_max"] >= metrics["grad_norm_mean"] > 1e-6
        assert set(per_stage(metrics, "gate_abs")) == {"layer1", "layer2", "layer3", "layer4"}
        assert all(0 < v < 1 for v in per_stage(metrics, "fusion_weight").values())
    assert result["num_classes"] == 2
    routing = per_stage(result, "ckpt_gate_abs")
    assert set(routing) == {"layer1", "layer2", "layer3", "layer4"}
    assert all(0 < v < 1 for v in routing.values())


@pytest.mark.slow
def test_a_run_without_clipping_records_the_norm_and_clips_nothing(tiny_config, tmp_path):
    result = train(tiny_config("model.temporal=tsm", "optim.clip_grad_norm=null", "optim.epochs=1",
                                 "optim.warmup_epochs=0"), tmp_path)
    metrics = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert metrics["clipped_share"] == 0.0 and metrics["grad_norm_mean"] > 0
    assert not any(k.startswith(("gate_abs", "ckpt_")) for k in {**metrics, **result})
