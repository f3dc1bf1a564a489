"""TemporalModule layout handling and set_num_frames."""

import pytest
import torch
from torch import nn

from gsf.errors import GSFConfigError
from gsf.ops import GateShiftFuse, TemporalModule, TemporalShift, set_num_frames


def test_five_d_and_flat_layouts_agree():
    m = GateShiftFuse(8)
    x = torch.randn(2, 3, 8, 4, 4)
    out5 = m(x)
    assert out5.shape == x.shape
    torch.testing.assert_close(out5, m(x.flatten(0, 1), num_frames=3).view_as(x), rtol=0, atol=0)
    m.num_frames = 3
    torch.testing.assert_close(m(x.flatten(0, 1)).view_as(x), out5, rtol=0, atol=0)


def test_unknown_clip_length_is_a_clear_error():
    with pytest.raises(ValueError, match="clip length is unknown"):
        TemporalShift(8)(torch.randn(6, 8, 2, 2))


def test_clip_length_must_divide_the_batch():
    with pytest.raises(ValueError, match="num_frames=4 does not divide the leading axis 6"):
        TemporalShift(8)(torch.randn(6, 8, 2, 2), num_frames=4)


def test_contradicting_num_frames_for_five_d_input():
    with pytest.raises(ValueError, match="contradicts"):
        TemporalShift(8)(torch.randn(2, 3, 8, 2, 2), num_frames=4)


def test_set_num_frames_reaches_every_temporal_module():
    model = nn.Sequential(nn.Conv2d(8, 8, 1), GateShiftFuse(8), nn.Sequential(TemporalShift(8)))
    assert set_num_frames(model, 5) == 2
    assert all(m.num_frames == 5 for m in model.modules() if isinstance(m, TemporalModule))
    assert model(torch.randn(10, 8, 3, 3)).shape == (10, 8, 3, 3)
    with pytest.raises(GSFConfigError, match="got 0"):
        set_num_frames(model, 0)
