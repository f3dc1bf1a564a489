"""ImageNet weights come from the local torch cache only: a clear error when absent, never a download."""

import pytest
import torch
from torchvision.models import resnet as tv_resnet

from gsf.errors import GSFCheckpointError
from gsf.models import build_model
from gsf.models.weights import torch_hub_checkpoint_dir


def test_missing_weights_name_the_expected_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(GSFCheckpointError) as error:
        build_model(backbone="resnet18", temporal="gsf", num_classes=3, pretrained=True)
    message = str(error.value)
    assert str(tmp_path) in message and "resnet18" in message and "https://" in message


def test_cached_weights_are_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    reference = tv_resnet.resnet18()
    weights = tv_resnet.ResNet18_Weights.IMAGENET1K_V1
    folder = torch_hub_checkpoint_dir()
    folder.mkdir(parents=True)
    torch.save(reference.state_dict(), folder / weights.url.rsplit("/", 1)[1])
    model = build_model(backbone="resnet18", temporal="gsf", num_classes=3, pretrained=True)
    torch.testing.assert_close(model.backbone.conv1.weight, reference.conv1.weight)
    torch.testing.assert_close(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_backbones_without_torchvision_weights_say_so():
    with pytest.raises(Exception, match="authors' checkpoint"):
        build_model(backbone="bninception", num_classes=3, pretrained=True)
