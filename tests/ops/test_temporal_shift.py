"""TemporalShift (TSM) against a naive per-frame loop."""

import itertools

import pytest
import torch

from gsf.errors import GSFConfigError
from gsf.ops import TemporalShift


def _loop_shift(x, frames, fold):
    out = torch.zeros_like(x)
    for i in range(x.shape[0]):
        t = i % frames
        if t + 1 < frames:
            out[i, :fold] = x[i + 1, :fold]
        if t > 0:
            out[i, fold:2 * fold] = x[i - 1, fold:2 * fold]
        out[i, 2 * fold:] = x[i, 2 * fold:]
    return out


@pytest.mark.parametrize(("channels", "fraction", "frames"),
                         list(itertools.product((8, 16, 20), (1 / 8, 1 / 4, 0.5), (1, 2, 5))))
def test_shift_equals_per_frame_loop_forward_and_backward(channels, fraction, frames):
    m = TemporalShift(channels, shift_fraction=fraction)
    x = torch.randn(2 * frames, channels, 3, 2, requires_grad=True)
    out = m(x, num_frames=frames)
    torch.testing.assert_close(out, _loop_shift(x, frames, m.fold), rtol=0, atol=0)
    upstream = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, upstream)
    x2 = x.detach().clone().requires_grad_(True)
    (gx_ref,) = torch.autograd.grad(_loop_shift(x2, frames, m.fold), x2, upstream)
    torch.testing.assert_close(gx, gx_ref, rtol=0, atol=0)


def test_tsm_has_no_parameters_and_folds_one_eighth():
    m = TemporalShift(64)
    assert m.fold == 8
    assert sum(p.numel() for p in m.parameters()) == 0


@pytest.mark.parametrize(("fraction", "fragment"), [(0.0, "got 0.0"), (0.75, "got 0.75"), (0.01, "fold of 0")])
def test_bad_shift_fraction_is_rejected(fraction, fragment):
    with pytest.raises(GSFConfigError, match=fragment):
        TemporalShift(16, shift_fraction=fraction, layer_name="layer1.0")
