"""Loading checkpoints in the authors' release format (GSF.md section 2)."""

import pytest
import torch

from gsf.errors import GSFCheckpointError
from gsf.models import build_model, from_authors_checkpoint


def _authors_format(model) -> dict:
    """Write our weights under the release's key names, as its training script saves them."""
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("head."):
            state["module.new_fc." + key[len("head."):]] = value
        else:
            release_key = key[len("backbone."):].replace(".temporal_after_conv3.", ".gsf.")
            state["module.base_model." + release_key] = value
    return {"model_state_dict": state, "epoch": 60, "best_prec1": 50.0, "scaler_state_dict": {}}


@pytest.mark.parametrize("backbone, fraction", [("resnet50", 0.25), ("bninception", 1.0)])
def test_authors_checkpoint_loads_strictly_and_gives_the_same_logits(tmp_path, backbone, fraction):
    torch.manual_seed(0)
    source = build_model(backbone=backbone, temporal="gsf", num_classes=7, channel_fraction=fraction).eval()
    path = tmp_path / "release.pth.tar"
    torch.save(_authors_format(source), path)
    loaded = from_authors_checkpoint(path, backbone=backbone, num_classes=7, channel_fraction=fraction).eval()
    clips = torch.randn(1, 2, 3, 64, 64)
    torch.testing.assert_close(loaded(clips), source(clips), rtol=0, atol=0)


def test_wrong_fraction_or_classes_is_a_clear_error(tmp_path):
    source = build_model(backbone="resnet50", temporal="gsf", num_classes=7, channel_fraction=0.25)
    path = tmp_path / "release.pth.tar"
    torch.save(_authors_format(source), path)
    with pytest.raises(GSFCheckpointError, match="channel_fraction=1.0"):
        from_authors_checkpoint(path, backbone="resnet50", num_classes=7, channel_fraction=1.0)
    with pytest.raises(GSFCheckpointError, match="shape mismatch"):
        from_authors_checkpoint(path, backbone="resnet50", num_classes=8, channel_fraction=0.25)


def test_truncated_or_missing_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.pth"
    torch.save({"model_state_dict": {"a": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(GSFCheckpointError, match="broken.pth"):
        from_authors_checkpoint(path, backbone="resnet_tiny", num_classes=3)
    with pytest.raises(GSFCheckpointError, match="does not exist"):
        from_authors_checkpoint(tmp_path / "nope.pth", backbone="resnet_tiny", num_classes=3)
