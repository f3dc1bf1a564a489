"""The composed (standard-operator) path of GateShiftFuse, taken when traced or on the meta device,
computes the same function as the reference, so complexity counts and shape checks see the real operator."""

import itertools

import pytest
import torch

from gsf.ops import GateShiftFuse
from gsf.ops.reference import GateShiftFuseReference


@pytest.mark.parametrize("groups, gate, fusion, fraction",
                         itertools.product((1, 2, 4), ("spatiotemporal", "spatial"),
                                           ("channel_weighting", "sum"), (1.0, 0.5)))
def test_composed_path_equals_the_reference(groups, gate, fusion, fraction):
    torch.manual_seed(0)
    knobs = dict(groups=groups, gate=gate, fusion=fusion, channel_fraction=fraction)
    reference = GateShiftFuseReference(16, **knobs).double().eval()
    fast = GateShiftFuse(16, **knobs).double().eval()
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(2 * 3, 16, 5, 4, dtype=torch.double, requires_grad=True)
    expected = reference(x, num_frames=3)
    got = fast._forward_composed(x, 3)
    torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-9)
    grad_expected, = torch.autograd.grad(expected.square().sum(), x)
    grad_got, = torch.autograd.grad(got.square().sum(), x)
    torch.testing.assert_close(grad_got, grad_expected, rtol=1e-7, atol=1e-9)


def test_traced_module_equals_eager_module():
    torch.manual_seed(0)
    module = GateShiftFuse(16).eval()
    x = torch.randn(2 * 4, 16, 6, 6)
    module.num_frames = 4
    traced = torch.jit.trace(module, (x,), check_trace=False)
    torch.testing.assert_close(traced(x), module(x), rtol=1e-5, atol=1e-6)
    assert "conv3d" in str(traced.graph) or "_convolution" in str(traced.graph)


def test_meta_device_forward_gives_the_shape():
    with torch.device("meta"):
        module = GateShiftFuse(32, channel_fraction=0.5)
        out = module(torch.empty(2 * 4, 32, 7, 7), num_frames=4)
    assert out.shape == (8, 32, 7, 7) and out.device.type == "meta"
