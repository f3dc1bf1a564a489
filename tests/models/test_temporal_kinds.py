"""TAM and TIN in the ResNets (docs/temporal-modules.md): placement as their releases, their own
initialisation, the clip length as architecture from the configuration to checkpoints, and the registry's
rules (supported backbones, knobs in the typed configuration)."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from gsf.engine.config import ModelConfig, check_config, check_model, load_config, model_kwargs
from gsf.errors import GSFConfigError
from gsf.models import build_model
from gsf.models.resnet import build_tiny_resnet, insert_temporal_modules
from gsf.ops import KNOBS, TEMPORAL_MODULES, TemporalAdaptive, TemporalInterlace

RESNET50_WIDTHS = [64] * 3 + [128] * 4 + [256] * 6 + [512] * 3  # conv1 output of each bottleneck
RESNET50_INPUTS = [64, 256, 256, 256, 512, 512, 512, 512] + [1024] * 6 + [2048] * 2  # each bottleneck's input


def test_tam_sits_after_conv1_bn_relu_of_every_bottleneck():
    model = build_model(backbone="resnet50", temporal="tam", num_classes=3, num_frames=8)
    names = model.temporal_module_names
    assert len(names) == 16 and all(n.endswith(".temporal_before_conv2") for n in names)
    modules = [model.backbone.get_submodule(n) for n in names]
    assert all(isinstance(m, TemporalAdaptive) and m.clip_length == 8 for m in modules)
    assert [m.channels for m in modules] == RESNET50_WIDTHS
    tam_params = sum(p.numel() for m in modules for p in m.parameters())
    assert tam_params == sum(c * c + c // 2 + 2 * 64 + 10 * 8 for c in RESNET50_WIDTHS) == 1_262_688


def test_tin_sits_on_the_residual_branch_input_of_every_bottleneck():
    model = build_model(backbone="resnet50", temporal="tin", num_classes=3, num_frames=8)
    names = model.temporal_module_names
    assert len(names) == 16 and all(n.endswith(".temporal_before_conv1") for n in names)
    modules = [model.backbone.get_submodule(n) for n in names]
    assert all(isinstance(m, TemporalInterlace) and m.clip_length == 8 for m in modules)
    assert [m.channels for m in modules] == RESNET50_INPUTS and sum(RESNET50_INPUTS) == 13_120
    assert sum(m.folds for m in modules) == 3_280
    assert sum(p.numel() for m in modules for p in m.parameters()) == 31_008


def test_resnet101_gets_one_module_per_bottleneck():
    for temporal in ("tam", "tin"):
        model = build_model(backbone="resnet101", temporal=temporal, num_classes=3, num_frames=8)
        assert len(model.temporal_module_names) == 33


def _block_by_hand(block, temporal, position, x):
    """A bottleneck's forward written out, with `temporal` at `position`."""
    identity = x if block.downsample is None else block.downsample(x)
    branch = temporal(x) if position == "before_conv1" else x
    out = torch.relu(block.bn1(block.conv1(branch)))
    if position == "before_conv2":
        out = temporal(out)
    out = torch.relu(block.bn2(block.conv2(out)))
    out = block.bn3(block.conv3(out))
    return torch.relu(out + identity)


@pytest.mark.parametrize(("temporal", "position"), [("tam", "before_conv2"), ("tin", "before_conv1")])
def test_block_computes_the_releases_order(temporal, position):
    # TAM: conv1 -> bn1 -> ReLU -> TAM -> conv2 ...; TIN: on conv1's input only, the shortcut sees the block input.
    torch.manual_seed(0)
    model = build_model(backbone="resnet_tiny", temporal=temporal, num_classes=3, num_frames=4).eval()
    block = model.backbone.layer2[0]
    module = getattr(block, f"temporal_{position}")
    x = torch.randn(8, block.conv1.in_channels, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), _block_by_hand(block, module, position, x))


@pytest.mark.parametrize("backbone", ["resnet18", "resnet34"])
def test_basic_blocks_take_tam_before_conv2_and_tin_before_conv1(backbone):
    tam = build_model(backbone=backbone, temporal="tam", num_classes=3, num_frames=2)
    assert all(n.endswith("temporal_before_conv2") for n in tam.temporal_module_names)
    tin = build_model(backbone=backbone, temporal="tin", num_classes=3, num_frames=2)
    assert all(n.endswith("temporal_before_conv1") for n in tin.temporal_module_names)
    assert len(tam.temporal_module_names) == len(tin.temporal_module_names) == {"resnet18": 8, "resnet34": 16}[backbone]


@pytest.mark.parametrize("temporal", ["tam", "tin"])
def test_modules_keep_their_own_initialisation_in_the_backbone(temporal):
    torch.manual_seed(0)
    model = build_model(backbone="resnet50", temporal=temporal, num_classes=3, num_frames=8)
    for name in model.temporal_module_names:
        for key, value in model.backbone.get_submodule(name).state_dict().items():
            if key == "offset_net.fc2.bias":
                assert torch.equal(value, torch.full_like(value, 0.5108))
            elif key == "weight_net.conv.bias" or key.endswith(".bias") and ".1." in key:  # TIN constant, BN bias
                assert torch.equal(value, torch.zeros_like(value))
            elif key.endswith(".1.weight"):  # BatchNorm1d
                assert torch.equal(value, torch.ones_like(value))
            elif value.is_floating_point() and "running" not in key:  # PyTorch's default U(-1/sqrt(fan_in), ..)
                fan_in = value.shape[1] * math.prod(value.shape[2:]) if value.dim() > 1 else None
                if fan_in is not None:
                    assert value.abs().max() <= 1 / math.sqrt(fan_in), f"{name}.{key}"


def test_the_backbone_init_loop_is_a_per_kind_property():
    class WithConv2d(nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 1)
            nn.init.zeros_(self.conv.weight)

        def forward(self, x):
            return x

    for backbone_init in (True, False):
        backbone = build_tiny_resnet()
        names = insert_temporal_modules(backbone, make_module=lambda c, n: WithConv2d(c), backbone_init=backbone_init)
        weights = [backbone.get_submodule(n).conv.weight for n in names]
        assert all(bool(torch.count_nonzero(w)) == backbone_init for w in weights)
    assert {k: v.backbone_init for k, v in TEMPORAL_MODULES.items()} == {
        "none": True, "tsm": True, "gsm": True, "gsf": True, "tam": False, "tin": False}


@pytest.mark.parametrize("temporal", ["tam", "tin"])
def test_clip_length_is_architecture_of_the_model(temporal):
    with pytest.raises(GSFConfigError, match="pass num_frames=T"):
        build_model(backbone="resnet_tiny", temporal=temporal, num_classes=3)
    model = build_model(backbone="resnet_tiny", temporal=temporal, num_classes=3, num_frames=4)
    assert model.num_frames == 4
    assert model(torch.randn(1, 4, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(GSFConfigError, match=r"layer1\.0\.temporal_before_conv\d' is built for clips of T=4 frames "
                                             r".* given clips of T=8"):
        model(torch.randn(1, 8, 3, 32, 32))
    assert build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3, num_frames=4).num_frames is None


@pytest.mark.parametrize("temporal", ["tam", "tin"])
def test_other_backbones_are_refused_naming_the_supported_ones(temporal):
    with pytest.raises(GSFConfigError, match=rf"'{temporal}' is not available on backbone 'bninception' .* it "
                                             r"supports resnet18, resnet34, resnet50, resnet101, resnet_tiny"):
        build_model(backbone="bninception", temporal=temporal, num_classes=3, num_frames=8)


def test_config_knob_defaults_are_the_registrys():
    defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    for name in KNOBS:
        assert defaults[name] == KNOBS[name].default, name


def test_model_kwargs_pass_the_clip_length_and_the_knobs():
    config = load_config(None, ["model.temporal=tam", "data.num_frames=4", "model.tam_kernel_size=5",
                                "model.tam_global_expansion=3", "model.tam_local_reduction=8",
                                "model.tin_shift_div=2", "model.backbone=resnet_tiny"], check=False)
    kwargs = model_kwargs(config, num_classes=3, pretrained=False)
    assert kwargs["num_frames"] == 4 and kwargs["tin_shift_div"] == 2
    model = build_model(**kwargs)
    tam = model.backbone.get_submodule(model.temporal_module_names[0])
    assert (tam.clip_length, tam.kernel_size, tam.global_expansion, tam.local_reduction) == (4, 5, 3, 8)
    config.model.temporal = "tin"
    tin = build_model(**model_kwargs(config, num_classes=3, pretrained=False))
    assert tin.backbone.get_submodule(tin.temporal_module_names[0]).shift_div == 2


@pytest.mark.parametrize(("override", "fragment"), [
    ("model.tam_kernel_size=4", "model.tam_kernel_size=4 must be odd"),
    ("model.tam_global_expansion=0", "model.tam_global_expansion=0 must be >= 1"),
    ("model.tam_local_reduction=0", "model.tam_local_reduction=0 must be >= 1"),
    ("model.tin_shift_div=0", "model.tin_shift_div=0 must be >= 1"),
])
def test_check_config_rejects_bad_knobs_naming_the_key(override, fragment):
    config = load_config(None, [override, "model.backbone=resnet_tiny", "model.pretrained=none"], check=False)
    with pytest.raises(GSFConfigError, match=fragment):
        check_config(config, need_data=False)


def test_check_model_names_the_layer_a_knob_does_not_fit():
    # resnet_tiny's stem gives 16 channels: tin_shift_div 2 leaves F = 8 at layer1.0, but 32 gives 0.
    bad = load_config(None, ["model.backbone=resnet_tiny", "model.temporal=tin", "model.tin_shift_div=32",
                             "data.num_frames=2", "data.input_size=32"], check=False)
    with pytest.raises(GSFConfigError, match=r"layer1\.0\.temporal_before_conv1.*F=0"):
        check_model(bad)


def _save_tam_checkpoint(path, *, drop_new_keys: bool = False):
    from gsf.engine.checkpoint import FORMAT, save_checkpoint

    temporal = "gsf" if drop_new_keys else "tam"
    config = load_config(None, ["model.backbone=resnet_tiny", f"model.temporal={temporal}", "model.pretrained=none",
                                "data.num_frames=4", "data.input_size=32"], check=False)
    model = build_model(**model_kwargs(config, num_classes=3, pretrained=False))
    saved_config = config.to_dict()
    if drop_new_keys:  # as a checkpoint written before the TAM/TIN knobs existed
        for key in ("tam_kernel_size", "tam_global_expansion", "tam_local_reduction", "tin_shift_div"):
            del saved_config["model"][key]
    save_checkpoint({"format": FORMAT, "model": model.state_dict(), "config": saved_config,
                     "class_names": ["a", "b", "c"]}, path)
    return model


def test_a_checkpoint_rebuilds_the_clip_length_it_was_trained_for(tmp_path):
    from gsf.inference.predict import load_checkpoint_model

    original = _save_tam_checkpoint(tmp_path / "tam.pt").eval()
    model, prep = load_checkpoint_model(tmp_path / "tam.pt")
    assert prep.num_frames == 4 and model.num_frames == 4
    assert {m.clip_length for m in model.temporal_modules} == {4}
    clip = torch.randn(1, 4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), original(clip))


def test_a_checkpoint_written_before_the_new_knobs_still_loads(tmp_path):
    from gsf.inference.predict import load_checkpoint_model

    _save_tam_checkpoint(tmp_path / "old.pt", drop_new_keys=True)
    model, _ = load_checkpoint_model(tmp_path / "old.pt")
    assert len(model.temporal_modules) == 4


def test_an_export_carries_the_clip_length_and_refuses_another(tmp_path):
    from gsf.errors import GSFCheckpointError
    from gsf.inference.export import export_model

    _save_tam_checkpoint(tmp_path / "tam.pt")
    result = export_model(tmp_path / "tam.pt", format="torchscript", out=tmp_path / "tam.ts")
    assert result.preprocessing.num_frames == 4
    with pytest.raises(GSFCheckpointError, match="built for clips of T=4 frames .* given clips of T=8"):
        export_model(tmp_path / "tam.pt", format="torchscript", out=tmp_path / "tam8.ts", frames=8)
    assert not (tmp_path / "tam8.ts").exists()
