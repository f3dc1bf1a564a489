"""The TSN-style video classifier: consensus, head init, run-time clip length, EPIC heads."""

import pytest
import torch

from gsf.errors import GSFConfigError
from gsf.models import build_model


def test_logits_are_the_mean_of_frame_logits():
    torch.manual_seed(0)
    model = build_model(backbone="resnet_tiny", temporal="none", num_classes=5).eval()
    clips = torch.randn(2, 3, 3, 32, 32)
    per_frame = model.head(model.backbone(clips.flatten(0, 1))).view(2, 3, 5)
    torch.testing.assert_close(model(clips), per_frame.mean(dim=1))


def test_new_head_is_initialised_as_the_reference_says():
    torch.manual_seed(0)
    model = build_model(backbone="resnet50", temporal="none", num_classes=400)
    assert model.head.weight.std().item() == pytest.approx(0.001, rel=0.05)
    assert torch.count_nonzero(model.head.bias) == 0
    assert isinstance(model.dropout, torch.nn.Dropout) and model.dropout.p == 0.5


def test_clip_length_changes_at_run_time_without_rebuilding():
    torch.manual_seed(0)
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=4).eval()
    for frames in (2, 4, 8):
        assert model(torch.randn(1, frames, 3, 32, 32)).shape == (1, 4)
        assert all(m.num_frames == frames for m in model.temporal_modules)


def test_temporal_model_sees_frame_order_and_tsn_does_not():
    torch.manual_seed(0)
    clips = torch.randn(1, 4, 3, 32, 32)
    reversed_clips = clips.flip(1)
    tsn = build_model(backbone="resnet_tiny", temporal="none", num_classes=4).eval()
    gsf_model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=4).eval()
    torch.nn.init.normal_(gsf_model.head.weight)
    torch.nn.init.normal_(tsn.head.weight)
    torch.testing.assert_close(tsn(clips), tsn(reversed_clips))
    assert not torch.allclose(gsf_model(clips), gsf_model(reversed_clips))


def test_epic_kitchens_model_has_verb_and_noun_heads():
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes={"verb": 97, "noun": 300}).eval()
    out = model(torch.randn(2, 2, 3, 32, 32))
    assert set(out) == {"verb", "noun"}
    assert out["verb"].shape == (2, 97) and out["noun"].shape == (2, 300)


def test_bad_arguments_are_rejected():
    with pytest.raises(GSFConfigError, match="dropout"):
        build_model(backbone="resnet_tiny", num_classes=3, dropout=1.5)
    with pytest.raises(GSFConfigError, match="num_classes"):
        build_model(backbone="resnet_tiny", num_classes=0)
    model = build_model(backbone="resnet_tiny", num_classes=3)
    with pytest.raises(ValueError, match=r"\(B, T, C, H, W\)"):
        model(torch.randn(2, 3, 32, 32))
