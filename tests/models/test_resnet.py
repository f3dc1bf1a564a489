"""Structure of ResNet insertion points (docs/gsf-operator.md section 2) and equivalence with torchvision."""

import pytest
import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from gsf.errors import GSFConfigError
from gsf.models.resnet import TemporalResidualBlock, build_resnet, build_tiny_resnet, insert_temporal_modules


class _Marker(nn.Module):
    """Stand-in temporal module that remembers its channel count."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def forward(self, x):
        assert x.shape[1] == self.channels
        return x


def _make(channels, layer_name):
    return _Marker(channels)


def test_paper_placement_puts_one_module_after_conv3_of_every_bottleneck():
    backbone = build_resnet(depth=50)
    names = insert_temporal_modules(backbone, make_module=_make)
    assert len(names) == 16
    assert all(name.endswith(".temporal_after_conv3") for name in names)
    channels = [backbone.get_submodule(name).channels for name in names]
    assert channels == [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3


def test_resnet101_has_33_paper_modules():
    assert len(insert_temporal_modules(build_resnet(depth=101), make_module=_make)) == 33


def test_basic_block_paper_placement_is_after_conv2():
    names = insert_temporal_modules(build_resnet(depth=18), make_module=_make)
    assert len(names) == 8 and all(n.endswith("temporal_after_conv2") for n in names)


def test_before_conv1_sees_block_input_channels():
    backbone = build_resnet(depth=50)
    names = insert_temporal_modules(backbone, make_module=_make, placement="before_conv1")
    assert backbone.get_submodule(names[0]).channels == 64
    assert backbone.get_submodule(names[3]).channels == 256  # first block of layer2 reads layer1's output


@pytest.mark.parametrize("last_n, expected_first", [(16, "layer1.0"), (8, "layer3.1"), (4, "layer3.5"), (0, None)])
def test_last_n_blocks_counts_from_the_top(last_n, expected_first):
    names = insert_temporal_modules(build_resnet(depth=50), make_module=_make, last_n_blocks=last_n)
    assert len(names) == last_n
    if expected_first:
        assert names[0].startswith(expected_first + ".")
        assert names[-1].startswith("layer4.2.")


def test_stages_and_all_positions():
    backbone = build_resnet(depth=50)
    names = insert_temporal_modules(backbone, make_module=_make, placement="all", stages=(3, 4))
    assert len(names) == 3 * 9
    assert {n.rsplit(".", 1)[1] for n in names} == {"temporal_after_conv1", "temporal_after_conv2",
                                                     "temporal_after_conv3"}
    assert not any(n.startswith(("layer1", "layer2")) for n in names)


def test_bad_insertion_knobs_are_rejected_with_the_value():
    with pytest.raises(GSFConfigError, match="'middle'"):
        insert_temporal_modules(build_tiny_resnet(), make_module=_make, placement="middle")
    with pytest.raises(GSFConfigError, match="BasicBlock"):
        insert_temporal_modules(build_resnet(depth=18), make_module=_make, placement="after_conv3")
    with pytest.raises(GSFConfigError, match="1-4"):
        insert_temporal_modules(build_tiny_resnet(), make_module=_make, stages=(5,))
    with pytest.raises(GSFConfigError, match="depth"):
        build_resnet(depth=42)


def test_existing_state_dict_keys_are_torchvision_keys():
    backbone = build_resnet(depth=50)
    insert_temporal_modules(backbone, make_module=lambda c, n: nn.BatchNorm2d(c))
    ours = {k for k in backbone.state_dict() if ".temporal_" not in k}
    theirs = {k for k in tv_resnet.resnet50().state_dict() if not k.startswith("fc.")}
    assert ours == theirs


@pytest.mark.parametrize("block_type", ["basic", "bottleneck"])
def test_temporal_block_with_identity_modules_equals_torchvision_block(block_type):
    torch.manual_seed(0)
    if block_type == "basic":
        block = tv_resnet.BasicBlock(8, 8)
        positions = ["before_conv1", "after_conv1", "before_conv2", "after_conv2"]
    else:
        down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        block = tv_resnet.Bottleneck(8, 4, stride=2, downsample=down)
        positions = ["before_conv1", "after_conv1", "before_conv2", "after_conv2", "after_conv3"]
    block.eval()
    x = torch.randn(2, 8, 10, 10)
    expected = block(x)
    wrapped = TemporalResidualBlock(block, {p: nn.Identity() for p in positions}).eval()
    torch.testing.assert_close(wrapped(x), expected)


def test_backbone_features_equal_torchvision_pooled_features():
    torch.manual_seed(0)
    reference = tv_resnet.resnet18().eval()
    backbone = build_resnet(depth=18).eval()
    backbone.load_state_dict({k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")})
    reference.fc = nn.Identity()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(backbone(x), reference(x))


def _fusion_weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for name, p in model.named_parameters()
                      if ".channel_conv" in name and name.endswith("weight")])


def test_gsf_fusion_convs_get_the_release_resnet_kaiming_init():
    """The release's ResNet runs its kaiming (normal, fan_out, relu) loop after GSF is built, so the 2->1
    3x3 fusion convs get std sqrt(2 / 9) ~ 0.47, not PyTorch's default ~ 0.14 (docs/gsf-operator.md section 1)."""
    from gsf.models import build_model

    torch.manual_seed(0)
    resnet = build_model(backbone="resnet50", temporal="gsf", num_classes=3)
    fusion = _fusion_weights(resnet)
    assert fusion.numel() == 16 * 2 * 18
    assert abs(fusion.std().item() - (2 / 9) ** 0.5) < 0.04 and abs(fusion.mean().item()) < 0.06
    gate = resnet.backbone.layer1[0].temporal_after_conv3.conv3D.weight  # PyTorch's default, as the release
    fan_in = gate.shape[1] * 27
    assert abs(gate.std().item() - 1 / (3 * fan_in) ** 0.5) < 0.2 / (3 * fan_in) ** 0.5
    inception = build_model(backbone="bninception", temporal="gsf", num_classes=3)  # unaffected there
    assert abs(_fusion_weights(inception).std().item() - 1 / 54 ** 0.5) < 0.03
