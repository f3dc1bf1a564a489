"""ImageNet weights of RegNetY and ConvNeXt-Tiny (torchvision's files): every tensor of the file lands on the
parameter or buffer it belongs to in our backbone, through the one rename (ConvNeXt's final LayerNorm,
``classifier.0`` in torchvision, is our ``norm``) and without the ImageNet classifier; the temporal modules
inserted afterwards keep their own initialisation.

Nothing is downloaded: the file is a torchvision model's state dict (built with ``weights=None``, filled with
random values) written into an empty torch hub cache."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import convnext as tv_convnext
from torchvision.models import regnet as tv_regnet

from gsf.models import build_model
from gsf.models.weights import IMAGENET_WEIGHTS, torch_hub_checkpoint_dir

# backbone -> (torchvision factory, file prefix -> our prefix, file prefixes of the ImageNet classifier)
TORCHVISION = {
    "regnet_y_400mf": (tv_regnet.regnet_y_400mf, {}, ("fc.",)),
    "convnext_tiny": (tv_convnext.convnext_tiny, {"classifier.0.": "norm."}, ("classifier.2.",)),
}


@pytest.fixture(autouse=True)
def one_thread():
    """ConvNeXt-Tiny is 28 M parameters: on a shared machine torch's thread pool mostly waits for other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in tmp_path, offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GSF_OFFLINE", "1")
    folder = torch_hub_checkpoint_dir()
    folder.mkdir(parents=True)
    return folder


def torchvision_file(backbone: str, hub) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """A torchvision model with random weights (positive variances) and its state dict, saved in the hub cache
    under the release's file name."""
    factory = TORCHVISION[backbone][0]
    reference = factory(weights=None)
    generator = torch.Generator().manual_seed(7)
    state = {}
    for key, value in reference.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(123, dtype=value.dtype)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=generator)
        else:
            state[key] = 0.1 * torch.randn(value.shape, generator=generator)
    reference.load_state_dict(state)
    torch.save(state, hub / IMAGENET_WEIGHTS[backbone].file_name)
    return reference, state


def our_key(backbone: str, key: str) -> str | None:
    _, renames, classifier = TORCHVISION[backbone]
    if key.startswith(classifier):
        return None
    for old, new in renames.items():
        if key.startswith(old):
            return new + key[len(old):]
    return key


@pytest.mark.parametrize("backbone", list(TORCHVISION))
def test_every_tensor_of_the_torchvision_file_lands_on_its_parameter(hub, backbone):
    _, state = torchvision_file(backbone, hub)
    assert IMAGENET_WEIGHTS[backbone].format == "torchvision"
    torch.manual_seed(3)
    model = build_model(backbone=backbone, temporal="gsf", num_classes=3, pretrained="imagenet")
    torch.manual_seed(3)
    scratch = build_model(backbone=backbone, temporal="gsf", num_classes=3, pretrained="none")
    ours, fresh = model.backbone.state_dict(), scratch.backbone.state_dict()

    loaded = set()
    for key, value in state.items():
        target = our_key(backbone, key)
        if target is None:
            assert key not in ours, key  # the ImageNet classifier has no place in the backbone
            continue
        assert target in ours, f"{key} -> {target}"
        assert torch.equal(ours[target], value), f"{key} -> {target}"
        loaded.add(target)
    if backbone == "convnext_tiny":
        assert {"norm.weight", "norm.bias"} <= loaded
        assert torch.equal(model.backbone.norm.weight, state["classifier.0.weight"])
    # everything else is a temporal module, with the initialisation it has without ImageNet weights
    rest = set(ours) - loaded
    assert rest and all(".temporal_residual_input." in key for key in rest)
    assert len(model.temporal_module_names) > 0
    for key in rest:
        assert torch.equal(ours[key], fresh[key]), key


@pytest.mark.parametrize("backbone", list(TORCHVISION))
def test_the_loaded_backbone_computes_the_torchvision_features(hub, backbone):
    reference, _ = torchvision_file(backbone, hub)
    if backbone == "convnext_tiny":
        reference.classifier[2] = torch.nn.Identity()  # keep the LayerNorm, drop the ImageNet linear
    else:
        reference.fc = torch.nn.Identity()
    model = build_model(backbone=backbone, temporal="none", num_classes=3, pretrained="imagenet")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        ours = model.backbone.double().eval()(x)
        expected = reference.double().eval()(x)
    assert ours.shape == expected.shape == (2, model.backbone.feature_dim)
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-9)
