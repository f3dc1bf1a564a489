"""Starting weights (docs/gsf-operator.md section 2): the release's ImageNet file of every backbone, read from the torch hub
cache, downloaded with its hash checked, and a clear error offline; files in each backbone's release format
load and our model then computes what the release's model computes on them; fine-tuning from checkpoints.

Nothing is downloaded: every weight file is written here, and the download function is replaced."""

import urllib.error

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet as tv_resnet

from gsf.errors import GSFCheckpointError, GSFConfigError
from gsf.models import build_model
from gsf.models import weights as weights_module
from gsf.models.specs import bn_inception as bn_inception_spec
from gsf.models.specs import inception_v3 as inception_v3_spec
from gsf.models.weights import IMAGENET_WEIGHTS, init_from_checkpoint, normalise_pretrained, torch_hub_checkpoint_dir


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache in tmp_path, offline."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GSF_OFFLINE", "1")
    folder = torch_hub_checkpoint_dir()
    folder.mkdir(parents=True)
    return folder


def test_weight_table_names_the_release_files():
    assert IMAGENET_WEIGHTS["bninception"].file_name == "bn_inception-9f5701afb96c8044.pth"
    assert IMAGENET_WEIGHTS["bninception"].hash_prefix == "9f5701afb96c8044"
    assert IMAGENET_WEIGHTS["inceptionv3"].file_name == "inceptionv3-cuhk-0e09b300b493bc74c.pth"
    assert IMAGENET_WEIGHTS["inceptionv3"].hash_prefix == "0e09b300b493bc74c"
    resnet50 = IMAGENET_WEIGHTS["resnet50"]  # the torchvision file the release's pretrained=True reads
    assert resnet50.url == tv_resnet.ResNet50_Weights.IMAGENET1K_V1.url and resnet50.hash_prefix == "0676ba61"
    assert all(entry.url.startswith("https://") for entry in IMAGENET_WEIGHTS.values())


def test_pretrained_values_and_the_bools_of_earlier_versions():
    assert normalise_pretrained(True) == "imagenet" and normalise_pretrained(False) == "none"
    assert normalise_pretrained("imagenet") == "imagenet" and normalise_pretrained("w.pth") == "w.pth"
    with pytest.raises(GSFConfigError, match="pretrained"):
        normalise_pretrained(3)
    with pytest.raises(GSFConfigError, match="resnet_tiny.*no ImageNet weights"):
        build_model(backbone="resnet_tiny", num_classes=3, pretrained="imagenet")


def test_offline_error_names_file_url_and_folder(hub):
    with pytest.raises(GSFCheckpointError) as error:
        build_model(backbone="bninception", temporal="gsf", num_classes=3, pretrained="imagenet")
    message = str(error.value)
    assert "bn_inception-9f5701afb96c8044.pth" in message and IMAGENET_WEIGHTS["bninception"].url in message
    assert str(hub) in message


def test_download_checks_the_hash_and_lands_in_the_cache(hub, monkeypatch):
    monkeypatch.delenv("GSF_OFFLINE")
    torch.manual_seed(0)
    reference = tv_resnet.resnet18()
    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst, hash_prefix))
        torch.save(reference.state_dict(), dst)

    monkeypatch.setattr(weights_module, "download_url_to_file", fake_download)
    model = build_model(backbone="resnet18", temporal="gsf", num_classes=3, pretrained="imagenet")
    entry = IMAGENET_WEIGHTS["resnet18"]
    assert calls == [(entry.url, str(hub / entry.file_name), entry.hash_prefix)]
    torch.testing.assert_close(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)

    def failing_download(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(weights_module, "download_url_to_file", failing_download)
    with pytest.raises(GSFCheckpointError, match="download failed") as error:
        build_model(backbone="resnet34", num_classes=3, pretrained=True)
    assert IMAGENET_WEIGHTS["resnet34"].url in str(error.value) and str(hub) in str(error.value)


@pytest.mark.parametrize("depth", [18, pytest.param(50, marks=pytest.mark.slow)])
def test_torchvision_file_gives_torchvision_features(hub, depth):
    """The release's ResNet is torchvision's with ImageNet weights: our backbone gives its features."""
    torch.manual_seed(depth)
    reference = getattr(tv_resnet, f"resnet{depth}")()
    for bn in (m for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        torch.nn.init.uniform_(bn.running_mean, -0.1, 0.1)
        torch.nn.init.uniform_(bn.running_var, 0.5, 1.5)
        torch.nn.init.uniform_(bn.weight, 0.5, 1.5)
    torch.save(reference.state_dict(), hub / IMAGENET_WEIGHTS[f"resnet{depth}"].file_name)
    model = build_model(backbone=f"resnet{depth}", temporal="none", num_classes=3, pretrained="imagenet")
    reference.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    ours = model.backbone.double().eval()(x)
    torch.testing.assert_close(ours, reference.double().eval()(x), rtol=1e-6, atol=1e-6)


def _release_inception_file(backbone: str, seed: int) -> dict[str, torch.Tensor]:
    """Random weights in the release's Inception format: layer ids as keys, 1-D tensors stored (1, C), no
    num_batches_tracked, the ImageNet classifier included (docs/gsf-operator.md section 2)."""
    model = build_model(backbone=backbone, temporal="none", num_classes=3).backbone
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        if value.dim() == 4:  # conv weight, scaled to keep activations of order 1
            fan_in = value.shape[1] * value.shape[2] * value.shape[3]
            tensor = torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif key.endswith(("running_var", "weight")):
            tensor = 0.5 + torch.rand(value.shape, generator=generator)
        else:
            tensor = 0.1 * torch.randn(value.shape, generator=generator)
        state[key] = tensor[None] if tensor.dim() == 1 else tensor
    classifier = "fc" if backbone == "bninception" else "top_cls_fc"
    state[f"{classifier}.weight"] = torch.randn(1000, model.feature_dim, generator=generator)
    state[f"{classifier}.bias"] = torch.randn(1, 1000, generator=generator)
    return state


def _release_graph_forward(rows, state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The release's Inception computation written out from the layer graph (docs/gsf-operator.md section 2): biased
    convs, BN eps 1e-5 with the file's statistics (dim 0 squeezed), ceil-mode pools, average pools counting
    padding, concatenation, global average pool; the classifier row is where the features end."""
    w = {k: (v[0] if v.dim() == 2 and v.shape[0] == 1 else v).double() for k, v in state.items()}
    tensors = {"data": x}
    for module_id, op, params, inputs, output in rows:
        a = tensors[inputs[0]]
        if op == "conv":
            _, _, stride, padding = params
            out = F.conv2d(a, w[f"{module_id}.weight"], w[f"{module_id}.bias"], stride=stride, padding=padding)
        elif op == "bn":
            out = F.batch_norm(a, w[f"{module_id}.running_mean"], w[f"{module_id}.running_var"],
                               w[f"{module_id}.weight"], w[f"{module_id}.bias"], training=False, eps=1e-5)
        elif op == "relu":
            out = F.relu(a)
        elif op == "max_pool":
            out = F.max_pool2d(a, params[0], params[1], params[2], ceil_mode=True)
        elif op == "avg_pool":
            out = F.avg_pool2d(a, params[0], params[1], params[2], ceil_mode=True, count_include_pad=True)
        elif op == "concat":
            out = torch.cat([tensors[name] for name in inputs], dim=1)
        elif op == "temporal":
            out = a
        elif op == "global_avg_pool":
            out = a.mean(dim=(2, 3))
        elif op == "linear":
            return a
        tensors[output] = out
    raise AssertionError("the graph has no classifier row")


@pytest.mark.slow
@pytest.mark.parametrize("backbone, rows, size", [("bninception", bn_inception_spec.GRAPH, 96),
                                                  ("inceptionv3", inception_v3_spec.GRAPH, 101)])
def test_release_inception_file_gives_the_release_computation(hub, backbone, rows, size):
    state = _release_inception_file(backbone, seed=1)
    torch.save(state, hub / IMAGENET_WEIGHTS[backbone].file_name)
    model = build_model(backbone=backbone, temporal="none", num_classes=3, pretrained="imagenet")
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        ours = model.backbone.double().eval()(x)
        release = _release_graph_forward(rows, state, x)
    assert ours.shape == release.shape == (2, model.backbone.feature_dim)
    torch.testing.assert_close(ours, release, rtol=1e-6, atol=1e-6 * float(release.abs().max()))


# Literal keys of the release's ImageNet Inception files (docs/gsf-operator.md section 2) with the
# shapes they are stored at (1-D tensors as (1, C)), and the tensor of our backbone each lands on.
INCEPTION_FILE_KEYS = {
    "bninception": {
        "conv1_7x7_s2.weight": ((64, 3, 7, 7), "conv1_7x7_s2.weight"),
        "conv1_7x7_s2.bias": ((1, 64), "conv1_7x7_s2.bias"),
        "conv1_7x7_s2_bn.running_mean": ((1, 64), "conv1_7x7_s2_bn.running_mean"),
        "conv1_7x7_s2_bn.weight": ((1, 64), "conv1_7x7_s2_bn.weight"),
        "inception_3a_1x1.weight": ((64, 192, 1, 1), "inception_3a_1x1.weight"),
        "inception_4e_3x3_reduce_bn.running_var": ((1, 128), "inception_4e_3x3_reduce_bn.running_var"),
        "inception_5b_pool_proj_bn.weight": ((1, 128), "inception_5b_pool_proj_bn.weight"),
    },
    "inceptionv3": {
        "conv_Conv2D.weight": ((32, 3, 3, 3), "conv_Conv2D.weight"),
        "conv_batchnorm.running_var": ((1, 32), "conv_batchnorm.running_var"),
        "mixed_conv_Conv2D.weight": ((64, 192, 1, 1), "mixed_conv_Conv2D.weight"),
        "mixed_9_conv_Conv2D.weight": ((320, 1280, 1, 1), "mixed_9_conv_Conv2D.weight"),
        "mixed_10_tower_1_conv_Conv2D.bias": ((1, 448), "mixed_10_tower_1_conv_Conv2D.bias"),
    },
}
IMAGENET_CLASSIFIERS = {"bninception": {"fc.weight": (1000, 1024), "fc.bias": (1, 1000)},
                        "inceptionv3": {"top_cls_fc.weight": (1000, 2048), "top_cls_fc.bias": (1, 1000)}}


@pytest.mark.parametrize("backbone", ["bninception", "inceptionv3"])
def test_release_inception_file_keys_land_on_our_backbone_squeezed(tmp_path, backbone):
    state = _release_inception_file(backbone, seed=4)
    pinned, classifier = INCEPTION_FILE_KEYS[backbone], IMAGENET_CLASSIFIERS[backbone]
    assert set(pinned) | set(classifier) <= set(state)
    assert not any(key.endswith("num_batches_tracked") for key in state)  # the files have no BN counters
    generator = torch.Generator().manual_seed(5)
    for key, (shape, _) in pinned.items():  # values of their own at the literal shapes
        state[key] = torch.rand(shape, generator=generator) + 0.5
    for key, shape in classifier.items():
        assert tuple(state[key].shape) == shape, key
    path = tmp_path / f"{backbone}.pth"
    torch.save(state, path)
    model = build_model(backbone=backbone, temporal="gsf", num_classes=3, pretrained=path)
    ours = model.backbone.state_dict()
    for key, (shape, our_name) in pinned.items():
        expected = state[key][0] if len(shape) == 2 else state[key]  # (1, C) lands as (C,)
        torch.testing.assert_close(ours[our_name], expected, rtol=0, atol=0, msg=f"{key} -> {our_name}")
    assert not any(name.startswith(("fc.", "top_cls_fc.")) for name in ours)  # the ImageNet classifier is dropped


def test_a_path_loads_and_temporal_modules_keep_their_init(tmp_path):
    path = tmp_path / "bn_inception_weights.pth"
    state = _release_inception_file("bninception", seed=2)
    torch.save(state, path)
    torch.manual_seed(5)
    scratch = build_model(backbone="bninception", temporal="gsf", num_classes=4)
    torch.manual_seed(5)
    started = build_model(backbone="bninception", temporal="gsf", num_classes=4, pretrained=path)
    assert len(started.temporal_module_names) == 10
    torch.testing.assert_close(started.backbone.inception_3a_1x1_bn.running_var, state["inception_3a_1x1_bn.running_var"][0])
    for name in started.temporal_module_names:
        for (key, ours), (_, fresh) in zip(started.backbone.get_submodule(name).state_dict().items(),
                                           scratch.backbone.get_submodule(name).state_dict().items()):
            torch.testing.assert_close(ours, fresh, msg=f"{name}.{key}")
    without_classifier = {k: v for k, v in state.items() if not k.startswith("fc.")}
    torch.save(without_classifier, path)
    build_model(backbone="bninception", temporal="gsf", num_classes=4, pretrained=path)  # the classifier may be absent


def test_foreign_keys_are_named(tmp_path):
    path = tmp_path / "weights.pth"
    state = _release_inception_file("bninception", seed=3)
    state["inception_9z_1x1.weight"] = torch.zeros(3)
    del state["conv2_3x3.bias"]
    torch.save(state, path)
    with pytest.raises(GSFCheckpointError) as error:
        build_model(backbone="bninception", num_classes=3, pretrained=path)
    assert "inception_9z_1x1.weight" in str(error.value) and "conv2_3x3.bias" in str(error.value)
    with pytest.raises(GSFCheckpointError, match="does not exist"):
        build_model(backbone="resnet18", num_classes=3, pretrained=tmp_path / "absent.pth")


def _our_checkpoint(path, model):
    torch.save({"format": "gsf-bench", "model": model.state_dict()}, path)


def test_init_from_our_checkpoint_reinitialises_a_head_of_another_class_count(tmp_path):
    torch.manual_seed(0)
    source = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=400)
    _our_checkpoint(tmp_path / "k400.pt", source)
    target = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=174)
    fresh_head = target.head.weight.clone()
    kept = init_from_checkpoint(target, tmp_path / "k400.pt")
    assert kept == ["head.bias", "head.weight"]
    torch.testing.assert_close(target.head.weight, fresh_head)
    for key, value in source.state_dict().items():
        if not key.startswith("head."):
            torch.testing.assert_close(target.state_dict()[key], value, msg=key)
    same = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=400)
    assert init_from_checkpoint(same, tmp_path / "k400.pt") == []
    torch.testing.assert_close(same.head.weight, source.head.weight)
    other = build_model(backbone="resnet_tiny", temporal="tsm", num_classes=174)
    with pytest.raises(GSFCheckpointError, match="temporal_after_conv3"):
        init_from_checkpoint(other, tmp_path / "k400.pt")


def test_init_from_an_authors_checkpoint(tmp_path):
    torch.manual_seed(1)
    source = build_model(backbone="bninception", temporal="gsf", num_classes=174)
    release = {("module.new_fc." + k[len("head."):]) if k.startswith("head.") else "module.base_model." + k[len("backbone."):]: v
               for k, v in source.state_dict().items()}
    torch.save({"model_state_dict": release, "epoch": 3, "best_prec1": 0.5}, tmp_path / "release.pth.tar")
    target = build_model(backbone="bninception", temporal="gsf", num_classes=48)
    assert init_from_checkpoint(target, tmp_path / "release.pth.tar") == ["head.bias", "head.weight"]
    torch.testing.assert_close(target.backbone.gsf_inception_4e_3x3_reduce.conv3D.weight,
                               source.backbone.gsf_inception_4e_3x3_reduce.conv3D.weight)


def test_starting_weights_are_checked_before_any_work(tmp_path):
    from gsf.models.weights import check_starting_weights

    check_starting_weights(backbone="resnet_tiny", pretrained="none")
    check_starting_weights(backbone="bninception", pretrained="imagenet")  # nothing read or downloaded
    with pytest.raises(GSFConfigError, match="no ImageNet weights"):
        check_starting_weights(backbone="resnet_tiny", pretrained=True)
    with pytest.raises(GSFConfigError, match="absent.pth"):
        check_starting_weights(backbone="resnet50", pretrained=str(tmp_path / "absent.pth"))
    with pytest.raises(GSFConfigError, match="model.init_from"):
        check_starting_weights(backbone="resnet50", pretrained="imagenet", init_from=tmp_path / "absent.pt")
