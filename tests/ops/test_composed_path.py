"""The composed (standard-operator) path of GateShiftFuse is taken when traced or on the meta device, so
complexity counts and shape checks see the real operator. Its equality with the reference in outputs and
gradients, for every knob, is in the sweep of test_gate_shift_fuse.py (path="composed")."""

import torch

from gsf.ops import GateShiftFuse


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
