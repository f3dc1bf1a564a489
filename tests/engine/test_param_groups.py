"""The release recipes' optimiser policies: one group (GSF), TSM's groups (TAM, TIN), and the step schedule."""

import pytest
import torch

from gsf.engine.trainer import lr_factor, parameter_groups
from gsf.errors import GSFConfigError
from gsf.models import build_model


def _group_of(groups, param):
    return next(g for g in groups if any(p is param for p in g["params"]))


def test_tsm_policy_puts_each_parameter_where_tsms_code_base_does():
    model = build_model(backbone="resnet_tiny", temporal="tam", num_classes=5, num_frames=4)
    groups = parameter_groups(model, policy="tsm", lr=0.01, weight_decay=1e-4)
    assert (groups[0]["lr"], groups[0]["weight_decay"]) == (0.01, 1e-4)
    tam = model.backbone.layer1[0].temporal_before_conv2
    checks = {
        model.head.weight: (0.05, 1e-4),  # Linear weight x5, with decay
        model.head.bias: (0.1, 0.0),  # Linear bias x10, no decay
        tam.G[0].weight: (0.05, 1e-4),  # the module's own Linear layers count as Linear
        tam.L[0].weight: (0.01, 1e-4),  # its convolutions as convolutions
        tam.G[1].weight: (0.01, 0.0), tam.G[1].bias: (0.01, 0.0),  # BatchNorm: no decay
        model.backbone.conv1.weight: (0.01, 1e-4),
        model.backbone.bn1.weight: (0.01, 0.0),
    }
    for param, (lr, decay) in checks.items():
        group = _group_of(groups, param)
        assert (group["lr"], group["weight_decay"]) == pytest.approx((lr, decay))
    gsf = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=5)
    gate = gsf.backbone.layer1[0].temporal_after_conv3.conv3D
    assert _group_of(parameter_groups(gsf, policy="tsm", lr=0.01, weight_decay=1e-4), gate.bias)["lr"] == pytest.approx(0.02)
    every = [p for g in groups for p in g["params"]]
    assert len(every) == len(list(model.parameters())) == len({id(p) for p in every})


def test_uniform_policy_is_one_group_of_every_parameter():
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=5)
    model.backbone.bn1.weight.requires_grad_(False)
    (group,) = parameter_groups(model, policy="uniform", lr=0.01, weight_decay=5e-4)
    assert len(group["params"]) == len(list(model.parameters()))
    assert (group["lr"], group["weight_decay"]) == (0.01, 5e-4)
    with pytest.raises(GSFConfigError, match="optim.param_groups='lr5'"):
        parameter_groups(model, policy="lr5", lr=0.01, weight_decay=0.0)


def test_step_schedule_divides_by_ten_from_each_step_as_tsm_does():
    factors = [lr_factor(e, epochs=50, warmup_epochs=0, warmup_start_factor=0.1, schedule="step", lr_steps=[30, 40, 45])
               for e in (0, 29, 30, 39, 40, 45, 49)]
    assert factors == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.001, 0.001])
    assert lr_factor(0, epochs=50, warmup_epochs=2, warmup_start_factor=0.1, schedule="step", lr_steps=[30]) == 0.1


def test_a_step_schedule_needs_increasing_steps_inside_the_run(tiny_config):
    with pytest.raises(GSFConfigError, match="optim.lr_steps"):
        tiny_config("optim.schedule=step")
    with pytest.raises(GSFConfigError, match="optim.lr_steps"):
        tiny_config("optim.schedule=step", "optim.lr_steps=[1, 1]")
    assert tiny_config("optim.schedule=step", "optim.lr_steps=[1]").optim.lr_steps == [1]


def test_a_run_with_tsms_policy_trains_each_group_at_its_lr(tiny_config, tmp_path):
    from gsf.engine import train

    seen = {}

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.setdefault("lrs", sorted({round(g["lr"], 8) for g in self.param_groups}))
            return super().step(closure)

    import gsf.engine.trainer as trainer

    original = torch.optim.SGD
    trainer.torch.optim.SGD = Spy
    try:
        result = train(tiny_config("model.temporal=tsm", "optim.param_groups=tsm", "optim.epochs=1",
                                   "optim.warmup_epochs=0", "optim.lr=0.01"), tmp_path)
    finally:
        trainer.torch.optim.SGD = original
    assert seen["lrs"] == pytest.approx([0.01, 0.05, 0.1])  # no conv bias in a TSM resnet_tiny
    assert result["best_epoch"] == 1
