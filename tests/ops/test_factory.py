"""make_temporal_module and the registry of kinds: kinds, defaults, knob validation."""

import pytest
import torch

from gsf.errors import GSFConfigError
from gsf.ops import (
    TEMPORAL_KINDS,
    TEMPORAL_MODULES,
    GateShift,
    GateShiftFuse,
    TemporalAdaptive,
    TemporalInterlace,
    TemporalModule,
    TemporalShift,
    make_temporal_module,
)


def test_the_registry_holds_the_known_kinds_in_the_vocabularys_order():
    # Spelled out: the parametrised tests below follow the registry, so a kind that vanished would go unnoticed
    # there.
    assert TEMPORAL_KINDS == tuple(TEMPORAL_MODULES) == ("none", "tsm", "gsm", "gsf", "tam", "tin")


@pytest.mark.parametrize("kind", TEMPORAL_KINDS)
def test_every_kind_builds_with_its_default_knobs_and_keeps_the_clips_shape(kind):
    module = make_temporal_module(kind, 64, num_frames=4, layer_name="l")
    if TEMPORAL_MODULES[kind].build is None:
        assert module is None
        return
    assert isinstance(module, TemporalModule)
    clips = torch.randn(2 * 4, 64, 6, 6)
    assert module(clips, num_frames=4).shape == clips.shape


def test_kinds_build_the_right_classes():
    assert make_temporal_module("none", 64, layer_name="l") is None
    assert isinstance(make_temporal_module("tsm", 64, layer_name="l"), TemporalShift)
    gsm = make_temporal_module("gsm", 64, layer_name="l")
    assert isinstance(gsm, GateShift) and gsm.fusion == "sum"
    assert torch.count_nonzero(gsm.conv3D.weight) == 0
    gsf = make_temporal_module("gsf", 64, layer_name="l", channel_fraction=0.25)
    assert type(gsf) is GateShiftFuse and gsf.gated_channels == 16
    assert torch.count_nonzero(gsf.conv3D.weight) > 0
    assert isinstance(make_temporal_module("tam", 64, num_frames=8, layer_name="l"), TemporalAdaptive)
    assert isinstance(make_temporal_module("tin", 64, num_frames=8, layer_name="l"), TemporalInterlace)


@pytest.mark.parametrize(
    ("kind", "kwargs", "fragment"),
    [
        ("gsf2", {}, f"kind='gsf2' is not one of {list(TEMPORAL_KINDS)}"),
        ("tsm", {"gate": "spatio"}, "gate='spatio'"),
        ("none", {"fusion": "max"}, "fusion='max'"),
        ("gsf", {"groups": 16}, "groups=16 is not one of [1, 2, 4, 8]"),
        ("gsf", {"tam_kernel_size": 2}, "tam_kernel_size must be an odd positive int, got 2"),
        ("tsm", {"tin_shift_div": 0}, "tin_shift_div must be a positive int, got 0"),
        ("tin", {"shift_fraction": 0.75}, "shift_fraction must be a fraction in (0, 0.5], got 0.75"),
    ],
)
def test_unknown_kinds_and_knobs_list_the_valid_values(kind, kwargs, fragment):
    with pytest.raises(GSFConfigError) as err:
        make_temporal_module(kind, 64, layer_name="layer3.2", **kwargs)
    assert fragment in str(err.value)
    assert "layer3.2" in str(err.value)


def test_an_unknown_knob_names_the_valid_ones():
    with pytest.raises(GSFConfigError, match=r"unknown temporal-module knob\(s\) \['shift_div'\].*tin_shift_div"):
        make_temporal_module("tin", 64, num_frames=8, shift_div=4)


@pytest.mark.parametrize("name", TEMPORAL_KINDS)
def test_every_kind_is_registered_with_its_facts(name):
    kind = TEMPORAL_MODULES[name]
    assert kind.name == name and kind.label
    assert (kind.build is None) == (name == "none")
    assert "resnet" in kind.families
    knob_names = [knob.name for knob in kind.knobs]
    assert len(knob_names) == len(set(knob_names))


def test_tam_and_tin_are_resnet_only_built_for_one_clip_length_and_keep_their_own_init():
    tam, tin = TEMPORAL_MODULES["tam"], TEMPORAL_MODULES["tin"]
    assert tam.families == tin.families == ("resnet",)
    assert tam.fixed_num_frames and tin.fixed_num_frames and not TEMPORAL_MODULES["gsf"].fixed_num_frames
    assert not tam.backbone_init and not tin.backbone_init and TEMPORAL_MODULES["gsf"].backbone_init
    assert tam.placements == {"resnet": "before_conv2"} and tin.placements == {"resnet": "before_conv1"}
    assert [k.name for k in tam.knobs] == ["tam_kernel_size", "tam_global_expansion", "tam_local_reduction"]
    assert [(k.name, k.default) for k in tin.knobs] == [("tin_shift_div", 4)]
    assert [k.default for k in tam.knobs] == [3, 2, 4]
