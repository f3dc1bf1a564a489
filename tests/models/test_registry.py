"""Every registered variant is built and trained for a step on CPU; factory errors are clear."""

import itertools

import pytest
import torch

from gsf.errors import GSFConfigError
from gsf.models import BACKBONES, build_model, create_model, list_models, variant_kwargs
from gsf.ops import TEMPORAL_KINDS, TEMPORAL_MODULES, GSFKnobs

SMALLEST_INPUT = {"inceptionv3": 75}  # InceptionV3's branches only line up at certain sizes


@pytest.mark.parametrize("name", list_models())
def test_every_variant_trains_a_step_and_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    # Built for 2-frame clips: TAM and TIN are built for one T (num_frames), the other kinds ignore it.
    model = create_model(name, num_classes=variant_kwargs(name).get("num_classes", 3), dropout=0.0, num_frames=2)
    size = SMALLEST_INPUT.get(variant_kwargs(name)["backbone"], 32)
    model.train()
    out = model(torch.randn(2, 2, 3, size, size))
    outputs = out.values() if isinstance(out, dict) else [out]
    loss = sum(o.square().mean() for o in outputs)
    loss.backward()
    assert torch.isfinite(loss)
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: parameters without gradient: {no_grad[:5]}"
    temporal = variant_kwargs(name).get("temporal")
    assert (len(model.temporal_module_names) > 0) == (temporal != "none")


@pytest.mark.parametrize("temporal", TEMPORAL_KINDS)
def test_every_backbone_has_every_temporal_kind_it_supports_registered(temporal):
    kind = TEMPORAL_MODULES[temporal]
    for backbone, spec in BACKBONES.items():
        name = f"{backbone}_{'tsn' if kind.name == 'none' else kind.name}"
        assert (name in list_models()) == (spec.family in kind.families), name


def test_the_known_kinds_have_their_variants_and_tam_and_tin_their_published_clip_length():
    # Spelled out: the parametrised test above follows the registry, so a kind that vanished would go unnoticed
    # there.
    assert {f"resnet50_{kind}" for kind in ("tsn", "tsm", "gsm", "gsf", "tam", "tin")} <= set(list_models())
    assert {"resnet18_tam", "resnet34_tin", "resnet50_tam", "resnet50_tin", "resnet101_tam", "resnet_tiny_tin"} <= set(
        list_models())
    assert variant_kwargs("resnet50_tam") == {"backbone": "resnet50", "temporal": "tam", "num_frames": 8}


def test_list_models_filters_with_a_pattern():
    assert list_models("resnet50_*") == sorted(n for n in list_models() if n.startswith("resnet50_"))
    assert "bninception_gsf" in list_models("*inception*")


def test_unknown_names_suggest_the_closest():
    with pytest.raises(GSFConfigError, match="did you mean 'resnet50'"):
        build_model(backbone="resnet05", num_classes=3)
    with pytest.raises(GSFConfigError, match="did you mean 'gsf'"):
        build_model(backbone="resnet_tiny", temporal="gsff", num_classes=3)
    with pytest.raises(GSFConfigError, match="unknown model variant"):
        create_model("resnet50_gsx")


def test_knobs_are_checked_even_for_tsn():
    with pytest.raises(GSFConfigError, match="groups"):
        build_model(backbone="resnet_tiny", temporal="none", num_classes=3, groups=3)


def test_channel_fraction_the_gate_cannot_split_names_the_layer():
    # resnet_tiny's first bottleneck outputs 64 channels: fraction 0.1 -> C' = 8 is not divisible by 2 x 8 groups.
    with pytest.raises(GSFConfigError, match="layer1.0"):
        build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3, channel_fraction=0.1, groups=8)


def test_tsm_defaults_to_the_residual_shift_and_gsf_to_the_paper_position():
    assert all(n.endswith("before_conv1") for n in build_model(backbone="resnet_tiny", temporal="tsm",
                                                                num_classes=3).temporal_module_names)
    assert all(n.endswith("after_conv3") for n in build_model(backbone="resnet_tiny", temporal="gsf",
                                                               num_classes=3).temporal_module_names)


def test_insertion_knobs_that_do_not_apply_are_rejected():
    with pytest.raises(GSFConfigError, match="stages"):
        build_model(backbone="bninception", num_classes=3, stages=(1,))


@pytest.mark.parametrize("name", list(BACKBONES))
def test_backbone_spec_states_what_the_built_backbone_is(name):
    from torchvision.models.resnet import BasicBlock, Bottleneck

    from gsf.models import backbone_spec
    from gsf.models.registry import build_meta_model

    spec = backbone_spec(name)
    backbone = build_meta_model(backbone=name, temporal="none", num_classes=2, pretrained="none").backbone
    assert backbone.input_size == spec.input_size
    assert (backbone.input_space == "BGR") == (spec.family == "inception") == (spec.normalisation == "inception")
    blocks = {type(m) for m in backbone.modules() if isinstance(m, (BasicBlock, Bottleneck))}
    expected = {"basic": {BasicBlock}, "bottleneck": {Bottleneck}, None: set()}[spec.block]
    assert blocks == expected


def test_backbone_spec_of_an_unknown_name_suggests_the_closest():
    from gsf.models import backbone_spec

    with pytest.raises(GSFConfigError, match="unknown backbone 'resnet5'.*did you mean"):
        backbone_spec("resnet5")


def test_build_model_checks_the_knobs_without_building_a_module(monkeypatch):
    from gsf.ops.gate_shift_fuse import GateShiftFuse

    built = []
    original = GateShiftFuse.__init__

    def counting(self, *args, **kwargs):
        built.append(kwargs.get("layer_name"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(GateShiftFuse, "__init__", counting)
    build_model(backbone="resnet_tiny", temporal="none", num_classes=3, groups=4, fusion="sum")
    assert built == []
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3)
    assert len(built) == len(model.temporal_module_names) > 0


@pytest.mark.parametrize(("groups", "gate", "fusion"), list(itertools.product(
    *(GSFKnobs.specs()[name].choices for name in ("groups", "gate", "fusion")))))
def test_build_model_draws_what_the_former_knob_check_module_drew(groups, gate, fusion):
    # build_model once checked the knobs by building GateShiftFuse(64, ...) and dropping it; its draws are kept,
    # so seeded models start from the same weights as before.
    from gsf.models.registry import _advance_random_stream
    from gsf.ops import GateShiftFuse

    torch.manual_seed(5)
    GateShiftFuse(64, groups=groups, gate=gate, fusion=fusion)
    expected = torch.rand(4)
    torch.manual_seed(5)
    _advance_random_stream(GSFKnobs(groups=groups, gate=gate, fusion=fusion))
    torch.testing.assert_close(torch.rand(4), expected, rtol=0, atol=0)
