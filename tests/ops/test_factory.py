"""make_temporal_module: kinds, defaults, knob validation."""

import pytest
import torch

from gsf.errors import GSFConfigError
from gsf.ops import TEMPORAL_KINDS, GateShift, GateShiftFuse, TemporalShift, make_temporal_module


def test_kinds_build_the_right_classes():
    assert TEMPORAL_KINDS == ("none", "tsm", "gsm", "gsf")
    assert make_temporal_module("none", 64, layer_name="l") is None
    assert isinstance(make_temporal_module("tsm", 64, layer_name="l"), TemporalShift)
    gsm = make_temporal_module("gsm", 64, layer_name="l")
    assert isinstance(gsm, GateShift) and gsm.fusion == "sum"
    assert torch.count_nonzero(gsm.conv3D.weight) == 0
    gsf = make_temporal_module("gsf", 64, layer_name="l", channel_fraction=0.25)
    assert type(gsf) is GateShiftFuse and gsf.gated_channels == 16
    assert torch.count_nonzero(gsf.conv3D.weight) > 0


@pytest.mark.parametrize(
    ("kind", "kwargs", "fragment"),
    [
        ("gsf2", {}, "kind='gsf2' is not one of ['none', 'tsm', 'gsm', 'gsf']"),
        ("tsm", {"gate": "spatio"}, "gate='spatio'"),
        ("none", {"fusion": "max"}, "fusion='max'"),
        ("gsf", {"groups": 16}, "groups=16 is not one of [1, 2, 4, 8]"),
    ],
)
def test_unknown_kinds_and_knobs_list_the_valid_values(kind, kwargs, fragment):
    with pytest.raises(GSFConfigError) as err:
        make_temporal_module(kind, 64, layer_name="layer3.2", **kwargs)
    assert fragment in str(err.value)
    assert "layer3.2" in str(err.value)
