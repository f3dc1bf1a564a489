"""The generic graph executor: a tiny hand-written graph against the same network written by hand."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from gsf.errors import GSFConfigError
from gsf.models.inception_graph import InceptionGraph, insert_temporal_modules

# stem conv, then a block with a conv branch (with the graph's own temporal slot) and a pool branch
TINY = (
    ("stem", "conv", (6, (3, 3), (2, 2), (1, 1)), ("data",), "stem"),
    ("stem_bn", "bn", (), ("stem",), "stem_bn"),
    ("stem_relu", "relu", (), ("stem_bn",), "stem_bn"),
    ("pool", "max_pool", (3, 2, 0), ("stem_bn",), "pool"),
    ("b_1x1", "conv", (4, (1, 1), (1, 1), (0, 0)), ("pool",), "b_1x1"),
    ("gsf_b_1x1", "temporal", (4,), ("b_1x1",), "gsf_b_1x1"),
    ("b_1x1_bn", "bn", (), ("gsf_b_1x1",), "b_1x1_bn"),
    ("b_relu_1x1", "relu", (), ("b_1x1_bn",), "b_1x1_bn"),
    ("b_pool", "avg_pool", (3, 1, 1), ("pool",), "b_pool"),
    ("b_pool_proj", "conv", (2, (1, 3), (1, 1), (0, 1)), ("b_pool",), "b_pool_proj"),
    ("b_pool_proj_bn", "bn", (), ("b_pool_proj",), "b_pool_proj_bn"),
    ("b_relu_pool_proj", "relu", (), ("b_pool_proj_bn",), "b_pool_proj_bn"),
    ("b_output", "concat", (6,), ("b_1x1_bn", "b_pool_proj_bn"), "b_output"),
    ("global_pool", "global_avg_pool", (), ("b_output",), "global_pool"),
    ("fc", "linear", (10,), ("global_pool",), "fc"),
)


class Tiny(InceptionGraph):
    feature_dim = 6
    input_size = 11

    def __init__(self):
        super().__init__(TINY, output="global_pool", extra_placements={"every_branch": ("b_1x1", "b_pool_proj")})


class Scale(nn.Module):
    """Stand-in temporal module: a learnable per-channel scale that records the clip length it saw."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), 2.0))
        self.num_frames = None

    def forward(self, x):
        assert x.shape[0] % self.num_frames == 0
        return x * self.weight.view(1, -1, 1, 1)


def reference_forward(net, x, temporal=None):
    """The tiny graph written by hand with the same parameters."""
    def conv_bn_relu(name, t):
        conv, bn = getattr(net, name), getattr(net, name + "_bn")
        t = conv(t)
        if temporal is not None and name in temporal:
            t = temporal[name](t)
        return F.relu(bn(t))
    t = F.max_pool2d(conv_bn_relu("stem", x), 3, 2, 0, ceil_mode=True)
    a = conv_bn_relu("b_1x1", t)
    p = conv_bn_relu("b_pool_proj", F.avg_pool2d(t, 3, 1, 1, ceil_mode=True, count_include_pad=True))
    return torch.cat([a, p], 1).mean((2, 3))


def test_tiny_graph_matches_hand_written_network_in_train_and_eval_mode():
    torch.manual_seed(0)
    net = Tiny()
    x = torch.randn(2, 3, 11, 11)
    for train in (True, False):
        net.train(train)
        torch.testing.assert_close(net(x), reference_forward(net, x))


def test_graph_builds_one_child_per_row_under_its_id_and_stops_before_the_classifier():
    net = Tiny()
    names = [name for name, _ in net.named_children()]
    assert names == [r[0] for r in TINY if r[1] not in ("temporal", "concat", "linear")]
    assert "fc.weight" not in net.state_dict()
    assert isinstance(net.b_pool_proj, nn.Conv2d) and net.b_pool_proj.kernel_size == (1, 3)


def test_inserted_module_runs_between_conv_and_bn_and_keeps_existing_keys():
    torch.manual_seed(0)
    net = Tiny().eval()
    keys_before = set(net.state_dict())
    calls = []
    names = insert_temporal_modules(
        net, make_module=lambda c, name: calls.append((c, name)) or Scale(c), placement="every_branch"
    )
    assert names == ["gsf_b_1x1", "gsf_b_pool_proj"]
    assert calls == [(4, "gsf_b_1x1"), (2, "gsf_b_pool_proj")]
    assert set(net.state_dict()) == keys_before | {"gsf_b_1x1.weight", "gsf_b_pool_proj.weight"}
    for name in names:
        getattr(net, name).num_frames = 2
    x = torch.randn(4, 3, 11, 11)
    expected = reference_forward(net, x, {"b_1x1": net.gsf_b_1x1, "b_pool_proj": net.gsf_b_pool_proj})
    torch.testing.assert_close(net(x), expected)
    assert net.temporal_module_names() == names


def test_authors_placement_comes_from_the_graphs_temporal_rows():
    net = Tiny()
    assert net.placements["authors"] == ("b_1x1",)
    assert insert_temporal_modules(net, make_module=lambda c, n: Scale(c)) == ["gsf_b_1x1"]


def test_make_module_returning_none_leaves_the_slot_empty():
    net = Tiny()
    assert insert_temporal_modules(net, make_module=lambda c, n: None, placement="every_branch") == []
    assert insert_temporal_modules(net, make_module=lambda c, n: Scale(c), placement="none") == []
    assert net.temporal_module_names() == []


def test_unknown_placement_names_the_valid_ones():
    with pytest.raises(GSFConfigError, match=r"'bogus'.*\['authors', 'every_branch', 'none'\]"):
        insert_temporal_modules(Tiny(), make_module=lambda c, n: Scale(c), placement="bogus")


def test_inserting_twice_at_the_same_slot_is_refused():
    net = Tiny()
    insert_temporal_modules(net, make_module=lambda c, n: Scale(c))
    with pytest.raises(GSFConfigError, match="already inserted at 'gsf_b_1x1'"):
        insert_temporal_modules(net, make_module=lambda c, n: Scale(c), placement="every_branch")


@pytest.mark.parametrize(
    "rows, message",
    [
        (TINY[:4] + (("x", "conv", (4, (1, 1), (1, 1), (0, 0)), ("nowhere",), "x"),), "reads \\['nowhere'\\]"),
        (TINY[:4] + (("gsf_pool", "temporal", (6,), ("pool",), "g"),), "must follow a conv"),
        (TINY[:1] + (("gsf_stem", "temporal", (5,), ("stem",), "g"),), "declares 5 channels"),
        (TINY[:12] + (("b_output", "concat", (7,), ("b_1x1_bn", "b_pool_proj_bn"), "b_output"),), "gives 6"),
    ],
)
def test_malformed_graph_is_rejected_with_the_row_named(rows, message):
    with pytest.raises(ValueError, match=message):
        InceptionGraph(rows, output="global_pool")


def test_concat_size_mismatch_names_the_input_size():
    rows = (
        ("a", "conv", (2, (3, 3), (2, 2), (0, 0)), ("data",), "a"),
        ("p", "max_pool", (3, 2, 0), ("data",), "p"),
        ("j", "concat", (5,), ("a", "p"), "j"),
        ("global_pool", "global_avg_pool", (), ("j",), "global_pool"),
    )
    net = InceptionGraph(rows, output="global_pool")
    assert net(torch.randn(1, 3, 9, 9)).shape == (1, 5)
    with pytest.raises(GSFConfigError, match=r"8x8 px input gives branches of different sizes \(3x3, 4x4\) at 'j'"):
        net(torch.randn(1, 3, 8, 8))
