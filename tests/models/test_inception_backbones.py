"""BN-Inception and InceptionV3: structure, authors' state-dict keys, temporal placements, complexity."""

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from gsf.errors import GSFConfigError
from gsf.models import bn_inception, inception_v3
from gsf.models.specs import bn_inception as bn_spec
from gsf.models.specs import inception_v3 as v3_spec

BACKBONES = {
    "bn_inception": (bn_inception.build_bn_inception, bn_spec, "pool2_3x3_s2"),
    "inception_v3": (inception_v3.build_inception_v3, v3_spec, "pool_1"),
}
FAMILIES = {"bn_inception": bn_inception, "inception_v3": inception_v3}
NUM_CLASSES = 174  # Something-Something, the head the reference parameter counts include
NUM_FRAMES = 8


class Scale(nn.Module):
    """Stand-in temporal module for the placement tests: a learnable per-channel scale."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x):
        return x * self.weight.view(1, -1, 1, 1)


def conv_linear_gmacs_per_view(backbone, frames):
    """Conv + linear multiply-adds of a TSN view of `frames` (per-frame backbone and head), docs/gsf-operator.md section 3."""
    x = torch.zeros(frames, 3, backbone.input_size, backbone.input_size)
    counter = FlopCountAnalysis(backbone.eval(), x)
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    counts = counter.by_operator()
    backbone_macs = sum(counts.get(op, 0) for op in ("conv", "linear", "addmm", "matmul"))
    head_macs = frames * backbone.feature_dim * NUM_CLASSES
    return (backbone_macs + head_macs) * NUM_FRAMES / frames / 1e9


def params_millions(backbone):
    head = backbone.feature_dim * NUM_CLASSES + NUM_CLASSES
    return (sum(p.numel() for p in backbone.parameters()) + head) / 1e6


@pytest.mark.parametrize("name, feature_dim, input_size", [("bn_inception", 1024, 224), ("inception_v3", 2048, 229)])
def test_backbone_maps_frames_to_features_and_declares_its_input(name, feature_dim, input_size):
    backbone = BACKBONES[name][0]().eval()
    assert (backbone.feature_dim, backbone.input_size) == (feature_dim, input_size)
    assert backbone.input_space == "BGR" and backbone.input_range == (0.0, 255.0)
    assert backbone.input_mean == (104.0, 117.0, 128.0) and backbone.input_std == (1.0, 1.0, 1.0)
    with torch.no_grad():
        assert backbone(torch.randn(1, 3, input_size, input_size)).shape == (1, feature_dim)


@pytest.mark.parametrize("name", BACKBONES)
def test_state_dict_keys_are_exactly_the_graphs_conv_and_bn_ids(name):
    build, spec, _ = BACKBONES[name]
    expected = set()
    for module_id, op, *_ in spec.GRAPH:
        if op == "conv":
            expected |= {f"{module_id}.weight", f"{module_id}.bias"}
        elif op == "bn":
            expected |= {f"{module_id}.{k}" for k in
                         ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    assert set(build().state_dict()) == expected


def test_bn_inception_spot_checked_keys_and_shapes():
    state = bn_inception.build_bn_inception().state_dict()
    assert state["conv1_7x7_s2.weight"].shape == (64, 3, 7, 7)
    assert state["inception_3a_1x1.weight"].shape == (64, 192, 1, 1)
    assert state["inception_3c_3x3_reduce.weight"].shape == (128, 320, 1, 1)
    assert state["inception_3c_double_3x3_2.weight"].shape == (96, 96, 3, 3)
    assert state["inception_4a_1x1.weight"].shape == (224, 576, 1, 1)
    assert state["inception_4e_3x3_reduce_bn.running_var"].shape == (128,)
    assert state["inception_4e_double_3x3_1.bias"].shape == (256,)
    assert state["inception_5a_1x1.weight"].shape == (352, 1056, 1, 1)
    assert state["inception_5b_pool_proj_bn.weight"].shape == (128,)
    assert "fc.weight" not in state


def test_inception_v3_spot_checked_keys_and_shapes():
    state = inception_v3.build_inception_v3().state_dict()
    assert state["conv_Conv2D.weight"].shape == (32, 3, 3, 3)
    assert state["mixed_tower_conv_1_Conv2D.weight"].shape == (64, 48, 5, 5)
    assert state["mixed_4_tower_conv_1_Conv2D.weight"].shape == (128, 128, 7, 1)
    assert state["mixed_4_tower_conv_2_Conv2D.weight"].shape == (192, 128, 1, 7)
    assert state["mixed_8_tower_1_conv_3_Conv2D.weight"].shape == (192, 192, 3, 3)
    assert state["mixed_9_conv_Conv2D.weight"].shape == (320, 1280, 1, 1)
    assert state["mixed_10_tower_mixed_conv_Conv2D.weight"].shape == (384, 384, 3, 1)
    assert state["mixed_10_tower_1_mixed_conv_1_Conv2D.weight"].shape == (384, 384, 1, 3)
    assert state["mixed_10_tower_2_conv_batchnorm.running_mean"].shape == (192,)
    assert state["mixed_10_tower_1_conv_Conv2D.bias"].shape == (448,)
    assert "top_cls_fc.weight" not in state


@pytest.mark.parametrize("name", BACKBONES)
def test_layers_follow_the_graph_conventions(name):
    backbone = BACKBONES[name][0]()
    kinds = set()
    for module in backbone.children():
        kinds.add(type(module))
        if isinstance(module, nn.Conv2d):
            assert module.bias is not None
        elif isinstance(module, nn.BatchNorm2d):
            assert (module.eps, module.momentum, module.affine) == (1e-5, 0.1, True)
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            assert module.ceil_mode
            assert getattr(module, "count_include_pad", True)
        elif isinstance(module, nn.ReLU):
            assert module.inplace
    assert kinds == {nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d}


def test_inception_v3_rejects_224_px_input_with_the_size_it_needs():
    backbone = inception_v3.build_inception_v3().eval()
    with torch.no_grad(), pytest.raises(GSFConfigError, match="224x224 px input.*'mixed_3_join'.*229x229"):
        backbone(torch.zeros(1, 3, 224, 224))


@pytest.mark.parametrize(
    "name, placement, count, first, last",
    [
        ("bn_inception", "authors", 10, "gsf_inception_3a_1x1", "gsf_inception_5b_1x1"),
        ("bn_inception", "every_branch", 36, "gsf_inception_3a_1x1", "gsf_inception_5b_pool_proj"),
        ("inception_v3", "authors", 11, "gsf_mixed_conv_Conv2D", "gsf_mixed_10_conv_Conv2D"),
        ("inception_v3", "every_branch", 40, "gsf_mixed_conv_Conv2D", "gsf_mixed_10_tower_2_conv_Conv2D"),
    ],
)
def test_placements_insert_the_expected_slots(name, placement, count, first, last):
    backbone = BACKBONES[name][0]()
    calls = []
    names = FAMILIES[name].insert_temporal_modules(
        backbone, make_module=lambda c, n: calls.append((c, n)) or Scale(c), placement=placement)
    assert len(names) == count and names[0] == first and names[-1] == last
    assert [n for _, n in calls] == names
    assert all(c == backbone.conv_channels(n.removeprefix("gsf_")) for c, n in calls)
    assert backbone.temporal_module_names() == names


def test_authors_placements_are_the_rows_of_the_reference_graphs():
    bn = bn_inception.build_bn_inception()
    assert [(c, bn.conv_channels(c)) for c in bn.placements["authors"]] == [
        ("inception_3a_1x1", 64), ("inception_3b_1x1", 64), ("inception_3c_3x3_reduce", 128),
        ("inception_4a_1x1", 224), ("inception_4b_1x1", 192), ("inception_4c_1x1", 160),
        ("inception_4d_1x1", 96), ("inception_4e_3x3_reduce", 128), ("inception_5a_1x1", 352),
        ("inception_5b_1x1", 352),
    ]
    v3 = inception_v3.build_inception_v3()
    assert [v3.conv_channels(c) for c in v3.placements["authors"]] == [64, 64, 64, 384, 192, 192, 192, 192,
                                                                         192, 320, 320]
    assert v3.placements["authors"][-3:] == ("mixed_8_tower_conv_Conv2D", "mixed_9_conv_Conv2D",
                                             "mixed_10_conv_Conv2D")


@pytest.mark.parametrize("name", BACKBONES)
def test_every_branch_placement_is_the_first_conv_of_each_branch(name):
    _, spec, stem_output = BACKBONES[name]
    producer = {row[4]: row for row in spec.GRAPH}
    block_inputs = {stem_output} | {row[4] for row in spec.GRAPH if row[1] == "concat"}

    def reads_block_input(tensor):
        source = producer.get(tensor)
        pooled = source is not None and source[1] in ("max_pool", "avg_pool") and source[3][0] in block_inputs
        return tensor in block_inputs or pooled

    firsts = tuple(row[0] for row in spec.GRAPH if row[1] == "conv" and reads_block_input(row[3][0]))
    assert spec.EVERY_BRANCH == firsts
    assert set(BACKBONES[name][0]().placements["authors"]) <= set(spec.EVERY_BRANCH)


def make_gsf(channels, layer_name):
    from gsf.ops import make_temporal_module

    return make_temporal_module("gsf", channels, layer_name=layer_name, channel_fraction=1.0)


@pytest.mark.parametrize("name", BACKBONES)
def test_forward_backward_with_gsf_reaches_every_parameter(name):
    from gsf.ops import set_num_frames

    torch.manual_seed(0)
    backbone = BACKBONES[name][0]().train()
    names = FAMILIES[name].insert_temporal_modules(backbone, make_module=make_gsf)
    set_num_frames(backbone, 2)
    size = backbone.input_size
    features = backbone(torch.randn(2, 3, size, size))  # one clip of two frames
    assert features.shape == (2, backbone.feature_dim)
    features.square().mean().backward()
    missing = [n for n, p in backbone.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert {n.split(".")[0] for n, _ in backbone.named_parameters() if n.startswith("gsf_")} == set(names)


@pytest.mark.parametrize("name, gmacs, params", [("bn_inception", 16.26, 10.45), ("inception_v3", 26.63, 22.16)])
def test_complexity_matches_the_release_without_temporal_modules(name, gmacs, params):
    backbone = BACKBONES[name][0]()
    assert conv_linear_gmacs_per_view(backbone, frames=1) == pytest.approx(gmacs, rel=0.005)
    assert params_millions(backbone) == pytest.approx(params, rel=0.005)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, modules, gmacs, params", [("bn_inception", 10, 16.35, 10.50), ("inception_v3", 11, 26.72, 22.22)]
)
def test_complexity_matches_the_release_with_gsf_at_the_authors_placement(name, modules, gmacs, params):
    from gsf.ops import set_num_frames

    backbone = BACKBONES[name][0]()
    base_gmacs, base_params = conv_linear_gmacs_per_view(backbone, frames=1), params_millions(backbone)
    names = FAMILIES[name].insert_temporal_modules(backbone, make_module=make_gsf)
    assert len(names) == modules
    set_num_frames(backbone, NUM_FRAMES)
    shapes = {}

    def record_input_shape(module, args):
        shapes[module] = tuple(int(d) for d in args[0].shape)

    for n in names:
        getattr(backbone, n).register_forward_pre_hook(record_input_shape)
    gsf_gmacs = conv_linear_gmacs_per_view(backbone, frames=NUM_FRAMES)
    assert gsf_gmacs == pytest.approx(gmacs, rel=0.005)
    assert params_millions(backbone) == pytest.approx(params, rel=0.005)
    # docs/gsf-operator.md section 1: gate conv 27*C'*T*H*W + fusion 18*C'*T multiply-adds, 29*C'+40 parameters a module
    assert len(shapes) == modules
    own_macs = sum(27 * c * h * w * NUM_FRAMES + 18 * c * NUM_FRAMES for _, c, h, w in shapes.values())
    own_params = sum(29 * c + 40 for _, c, _, _ in shapes.values())
    assert gsf_gmacs - base_gmacs == pytest.approx(own_macs / 1e9, rel=1e-6)
    assert params_millions(backbone) - base_params == pytest.approx(own_params / 1e6, rel=1e-6)


def test_gsf_keys_are_the_releases_under_the_authors_row_ids():
    backbone = bn_inception.build_bn_inception()
    before = set(backbone.state_dict())
    bn_inception.insert_temporal_modules(backbone, make_module=make_gsf)
    added = set(backbone.state_dict()) - before
    per_module = {"conv3D.weight", "conv3D.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                  "bn.num_batches_tracked", "channel_conv1.weight", "channel_conv1.bias",
                  "channel_conv2.weight", "channel_conv2.bias"}
    rows = [row[0] for row in bn_spec.GRAPH if row[1] == "temporal"]
    assert added == {f"{row}.{key}" for row in rows for key in per_module}


# Keys of the GSF modules in the release's Inception checkpoints, written out from the GSF rows of the layer
# graphs (gsf/models/specs; 100 % of the channels, so C' = C), with their shapes (docs/gsf-operator.md section 1)
RELEASE_GSF_KEYS = {
    "bninception": {
        "gsf_inception_3a_1x1.conv3D.weight": (2, 32, 3, 3, 3),  # C = 64
        "gsf_inception_3c_3x3_reduce.bn.running_mean": (128,),
        "gsf_inception_4d_1x1.conv3D.weight": (2, 48, 3, 3, 3),  # the module id (its output is "..._1x1c")
        "gsf_inception_5b_1x1.bn.weight": (352,),
        "gsf_inception_5b_1x1.channel_conv2.weight": (1, 2, 3, 3),
    },
    "inceptionv3": {
        "gsf_mixed_conv_Conv2D.conv3D.weight": (2, 32, 3, 3, 3),  # C = 64
        "gsf_mixed_3_conv_Conv2D.bn.running_var": (384,),
        "gsf_mixed_8_tower_conv_Conv2D.conv3D.bias": (2,),
        "gsf_mixed_10_conv_Conv2D.conv3D.weight": (2, 160, 3, 3, 3),  # C = 320
        "gsf_mixed_10_conv_Conv2D.channel_conv1.bias": (1,),
    },
}


@pytest.mark.parametrize("name", sorted(RELEASE_GSF_KEYS))
def test_gsf_modules_carry_the_release_keys_and_shapes(name):
    from gsf.models import build_model

    state = build_model(backbone=name, temporal="gsf", num_classes=3).backbone.state_dict()
    for key, shape in RELEASE_GSF_KEYS[name].items():
        assert key in state, key
        assert tuple(state[key].shape) == shape, key
