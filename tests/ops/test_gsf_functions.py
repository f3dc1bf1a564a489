"""The hand-written backward passes of GateTaps and ShiftFuse against finite differences (gradcheck)."""

import itertools

import pytest
import torch

from gsf.ops._gsf_functions import GateTaps, ShiftFuse


def _double(*shape, seed):
    return torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("n", "channels", "gated"), [(4, 6, 6), (3, 8, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_gate_taps_gradients_match_finite_differences(training, n, channels, gated):
    # Only the first `gated` channels go through BN and the taps; x comes back whole, and its gradient is
    # the pass-through gradient plus the BN one on the gated channels.
    pixels, groups, kernel = 5, 2, 3
    X = _double(n, channels, pixels, seed=0).requires_grad_()
    weight = (1 + 0.1 * _double(gated, seed=1)).requires_grad_()
    bias = (0.1 * _double(gated, seed=2)).requires_grad_()
    taps = _double(groups, kernel, gated // groups, seed=3).requires_grad_()
    running_mean, running_var = 0.1 * _double(gated, seed=4), 1 + 0.1 * _double(gated, seed=5).abs()

    def fn(X, weight, bias, taps):
        cols, _, _, passed = GateTaps.apply(X, weight, bias, taps, running_mean, running_var, 1e-5, training,
                                            gated)
        return cols, passed.square()

    assert torch.autograd.gradcheck(fn, (X, weight, bias, taps))


def test_gate_taps_returns_batch_statistics_when_training():
    X = _double(3, 4, 5, seed=0)
    ones, zeros = torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    _, mean, var, _ = GateTaps.apply(X, ones, zeros, _double(2, 3, 2, seed=1), zeros, ones, 1e-5, True, 4)
    torch.testing.assert_close(mean, X.mean(dim=(0, 2)))
    torch.testing.assert_close(var, X.var(dim=(0, 2), unbiased=False))


@pytest.mark.parametrize(("groups", "fusion", "bypass", "frames"), list(itertools.product(
    (1, 2, 4), ("channel_weighting", "sum", "average"), (0, 2), (1, 3))))
def test_shift_fuse_gradients_match_finite_differences(groups, fusion, bypass, frames):
    gated = 4 * groups
    n, pixels = 2 * frames, 3
    x = _double(n, gated + bypass, pixels, seed=groups).requires_grad_()
    g = torch.tanh(_double(n, groups, pixels, seed=7)).requires_grad_()
    fw = (0.5 * _double(groups, 2, 3, 3, seed=8)).requires_grad_() if fusion == "channel_weighting" else None
    fb = (0.1 * _double(groups, seed=9)).requires_grad_() if fusion == "channel_weighting" else None

    def fn(x, g, fw, fb):
        return ShiftFuse.apply(x, g, fw, fb, frames, gated, groups, fusion)

    assert torch.autograd.gradcheck(fn, (x, g, fw, fb))


@pytest.mark.parametrize("path", ["fused", "composed"])
@pytest.mark.parametrize("training", [True, False])
def test_gate_shift_fuse_runs_under_bfloat16_autocast_close_to_float32(training, path):
    # bf16 activations meet float32 BN parameters and statistics (inside GateTaps on the fused path: mixed-type
    # batch norm); the composed path is the one bf16 autocast meets on CUDA.
    from gsf.ops import GateShiftFuse

    torch.manual_seed(0)
    module = GateShiftFuse(16, groups=2, path=path).train(training)
    x = torch.randn(2 * 4, 16, 6, 6)
    x32 = x.clone().requires_grad_()
    ref = module(x32, num_frames=4)
    ref.square().sum().backward()
    module.zero_grad()
    xbf = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(xbf, num_frames=4)
    out.float().square().sum().backward()
    assert out.dtype in (torch.bfloat16, torch.float32)
    torch.testing.assert_close(out.float(), ref.detach(), atol=0.1, rtol=0.05)
    torch.testing.assert_close(xbf.grad.float(), x32.grad, atol=0.2, rtol=0.1)
