"""Loading checkpoints in the authors' release format (docs/gsf-operator.md section 2)."""

import pytest
import torch

from gsf.errors import GSFCheckpointError
from gsf.models import build_model, from_authors_checkpoint


def _authors_format(model) -> dict:
    """Write our weights under the release's key names, as its training script saves them."""
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("head."):
            state["module.new_fc." + key[len("head."):]] = value
        else:
            release_key = key[len("backbone."):].replace(".temporal_after_conv3.", ".gsf.")
            state["module.base_model." + release_key] = value
    return {"model_state_dict": state, "epoch": 60, "best_prec1": 50.0, "scaler_state_dict": {}}


@pytest.mark.parametrize("backbone, fraction", [("resnet50", 0.25), ("bninception", 1.0)])
def test_authors_checkpoint_loads_strictly_and_gives_the_same_logits(tmp_path, backbone, fraction):
    torch.manual_seed(0)
    source = build_model(backbone=backbone, temporal="gsf", num_classes=7, channel_fraction=fraction).eval()
    path = tmp_path / "release.pth.tar"
    torch.save(_authors_format(source), path)
    loaded = from_authors_checkpoint(path, backbone=backbone, num_classes=7, channel_fraction=fraction).eval()
    clips = torch.randn(1, 2, 3, 64, 64)
    torch.testing.assert_close(loaded(clips), source(clips), rtol=0, atol=0)


def test_wrong_fraction_or_classes_is_a_clear_error(tmp_path):
    source = build_model(backbone="resnet50", temporal="gsf", num_classes=7, channel_fraction=0.25)
    path = tmp_path / "release.pth.tar"
    torch.save(_authors_format(source), path)
    with pytest.raises(GSFCheckpointError, match="channel_fraction=1.0"):
        from_authors_checkpoint(path, backbone="resnet50", num_classes=7, channel_fraction=1.0)
    with pytest.raises(GSFCheckpointError, match="shape mismatch"):
        from_authors_checkpoint(path, backbone="resnet50", num_classes=8, channel_fraction=0.25)


def test_truncated_or_missing_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.pth"
    torch.save({"model_state_dict": {"a": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(GSFCheckpointError, match="broken.pth"):
        from_authors_checkpoint(path, backbone="resnet_tiny", num_classes=3)
    with pytest.raises(GSFCheckpointError, match="does not exist"):
        from_authors_checkpoint(tmp_path / "nope.pth", backbone="resnet_tiny", num_classes=3)


# --- the release's own key names, written out (docs/gsf-operator.md section 2) -----------------------------------------------
# A handful of literal keys a checkpoint of the release holds, with their shapes, and the parameter or buffer of
# ours each must land on. The rest of a ResNet file is filled from an independent source of its key names
# (torchvision's ResNet-50, whose keys the release's base_model keeps) and the release's GSF names.

# ResNet-50 GSF at 25 % of the channels (C' = 64 in layer1, 512 in layer4), 7 classes
RESNET50_RELEASE_KEYS = {
    "module.base_model.conv1.weight": ((64, 3, 7, 7), "backbone.conv1.weight"),
    "module.base_model.bn1.running_mean": ((64,), "backbone.bn1.running_mean"),
    "module.base_model.layer1.0.conv1.weight": ((64, 64, 1, 1), "backbone.layer1.0.conv1.weight"),
    "module.base_model.layer1.0.gsf.conv3D.weight": ((2, 32, 3, 3, 3),
                                                     "backbone.layer1.0.temporal_after_conv3.conv3D.weight"),
    "module.base_model.layer1.0.gsf.bn.running_var": ((64,), "backbone.layer1.0.temporal_after_conv3.bn.running_var"),
    "module.base_model.layer3.0.downsample.0.weight": ((1024, 512, 1, 1), "backbone.layer3.0.downsample.0.weight"),
    "module.base_model.layer4.2.bn3.weight": ((2048,), "backbone.layer4.2.bn3.weight"),
    "module.base_model.layer4.2.gsf.channel_conv2.weight": (
        (1, 2, 3, 3), "backbone.layer4.2.temporal_after_conv3.channel_conv2.weight"),
    "module.base_model.layer4.2.gsf.conv3D.bias": ((2,), "backbone.layer4.2.temporal_after_conv3.conv3D.bias"),
    "module.new_fc.weight": ((7, 2048), "head.weight"),
    "module.new_fc.bias": ((7,), "head.bias"),
}

# BN-Inception GSF at 100 % (GSF after inception_3a_1x1, C = 64, and after inception_4e_3x3_reduce, C = 128)
BN_INCEPTION_RELEASE_KEYS = {
    "module.base_model.conv1_7x7_s2.weight": ((64, 3, 7, 7), "backbone.conv1_7x7_s2.weight"),
    "module.base_model.conv1_7x7_s2_bn.running_mean": ((64,), "backbone.conv1_7x7_s2_bn.running_mean"),
    "module.base_model.inception_3a_1x1.weight": ((64, 192, 1, 1), "backbone.inception_3a_1x1.weight"),
    "module.base_model.gsf_inception_3a_1x1.conv3D.weight": ((2, 32, 3, 3, 3),
                                                             "backbone.gsf_inception_3a_1x1.conv3D.weight"),
    "module.base_model.gsf_inception_4e_3x3_reduce.bn.running_var": (
        (128,), "backbone.gsf_inception_4e_3x3_reduce.bn.running_var"),
    "module.base_model.gsf_inception_5b_1x1.channel_conv1.bias": ((1,), "backbone.gsf_inception_5b_1x1.channel_conv1.bias"),
    "module.base_model.inception_5b_pool_proj_bn.weight": ((128,), "backbone.inception_5b_pool_proj_bn.weight"),
    "module.new_fc.weight": ((7, 1024), "head.weight"),
    "module.new_fc.bias": ((7,), "head.bias"),
}

GSF_PARAMETERS = {  # a GSF module of C' channels (docs/gsf-operator.md section 1): BN3d over C', the gate conv C' -> 2 in 2
    "conv3D.weight": lambda c: (2, c // 2, 3, 3, 3),  # groups, and the two fusion convs 2 -> 1, 3x3
    "conv3D.bias": lambda c: (2,),
    "bn.weight": lambda c: (c,), "bn.bias": lambda c: (c,), "bn.running_mean": lambda c: (c,),
    "bn.running_var": lambda c: (c,), "bn.num_batches_tracked": lambda c: (),
    "channel_conv1.weight": lambda c: (1, 2, 3, 3), "channel_conv1.bias": lambda c: (1,),
    "channel_conv2.weight": lambda c: (1, 2, 3, 3), "channel_conv2.bias": lambda c: (1,),
}


def _tensor(shape, generator) -> torch.Tensor:
    if shape == ():
        return torch.tensor(5, dtype=torch.int64)  # a BatchNorm counter
    return torch.randn(shape, generator=generator)


def _resnet50_release_state(fraction: float, num_classes: int) -> dict[str, torch.Tensor]:
    """Every key of a release checkpoint of ResNet-50 GSF: torchvision's ResNet-50 keys under
    ``module.base_model.``, a ``gsf`` child in each bottleneck (after conv3, C' = C * fraction) and
    ``module.new_fc``; random values."""
    from torchvision.models import resnet50

    generator = torch.Generator().manual_seed(0)
    state = {f"module.base_model.{key}": _tensor(tuple(value.shape), generator)
             for key, value in resnet50().state_dict().items() if not key.startswith("fc.")}
    for layer, (blocks, channels) in enumerate(zip((3, 4, 6, 3), (256, 512, 1024, 2048)), start=1):
        for block in range(blocks):
            for name, shape in GSF_PARAMETERS.items():
                state[f"module.base_model.layer{layer}.{block}.gsf.{name}"] = _tensor(shape(int(channels * fraction)),
                                                                                     generator)
    state["module.new_fc.weight"] = _tensor((num_classes, 2048), generator)
    state["module.new_fc.bias"] = _tensor((num_classes,), generator)
    return state


def _assert_release_keys_land(model, state, pinned) -> None:
    ours = model.state_dict()
    for key, (shape, our_name) in pinned.items():
        assert tuple(state[key].shape) == shape, key
        torch.testing.assert_close(ours[our_name], state[key], rtol=0, atol=0, msg=f"{key} -> {our_name}")


@pytest.mark.slow  # builds ResNet-50 twice
def test_a_release_resnet50_checkpoint_lands_key_by_key_on_our_parameters(tmp_path):
    state = _resnet50_release_state(0.25, 7)
    assert set(RESNET50_RELEASE_KEYS) <= set(state)
    path = tmp_path / "release.pth.tar"
    torch.save({"model_state_dict": state, "epoch": 60, "best_prec1": 50.0, "scaler_state_dict": {}}, path)
    model = from_authors_checkpoint(path, backbone="resnet50", num_classes=7, channel_fraction=0.25)
    _assert_release_keys_land(model, state, RESNET50_RELEASE_KEYS)
    assert len(model.state_dict()) == len(state)  # strict: every key of the file, and nothing else


def test_a_release_bn_inception_checkpoint_lands_key_by_key_on_our_parameters(tmp_path):
    """The release keys BN-Inception by the layer graph's module ids, as we do, so the file's other keys are
    ours under the release's prefixes (``module.base_model.``, ``module.new_fc.``); the pinned keys, written out,
    must be among them, with their shapes, and land where named."""
    model = build_model(backbone="bninception", temporal="gsf", num_classes=7)
    generator = torch.Generator().manual_seed(1)
    state = {"module.base_model." + key[len("backbone."):] if key.startswith("backbone.") else
             "module.new_fc." + key[len("head."):]: _tensor(tuple(value.shape), generator)
             for key, value in model.state_dict().items()}
    assert set(BN_INCEPTION_RELEASE_KEYS) <= set(state)
    for key, (shape, _) in BN_INCEPTION_RELEASE_KEYS.items():
        state[key] = _tensor(shape, generator)
    path = tmp_path / "release.pth.tar"
    torch.save({"model_state_dict": state, "epoch": 60, "best_prec1": 50.0}, path)
    loaded = from_authors_checkpoint(path, backbone="bninception", num_classes=7)
    _assert_release_keys_land(loaded, state, BN_INCEPTION_RELEASE_KEYS)
