"""Multi-view evaluation: every view once, logits averaged per video; EPIC two-head loss and accuracy."""

import csv

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from gsf.data import collate_clips
from gsf.engine.evaluate import classification_metrics, predict_views, write_scores
from gsf.engine.trainer import correct, loss_fn
from gsf.errors import GSFDataError


class ViewDataset(Dataset):
    """Video i has V views; every pixel of view v holds the value 10 * i + v."""

    def __init__(self, videos=5, views=6, frames=2, duplicate=None):
        self.videos, self.views, self.frames, self.duplicate = videos, views, frames, duplicate

    def __len__(self):
        return self.videos

    def __getitem__(self, i):
        value = torch.arange(self.views, dtype=torch.float32) + 10 * i
        video = value.view(-1, 1, 1, 1, 1).expand(self.views, self.frames, 3, 2, 2).clone()
        index = self.duplicate if i == self.videos - 1 and self.duplicate is not None else i
        return {"video": video, "label": torch.tensor(i % 3), "index": index, "video_id": f"v{index}"}


class Probe(nn.Module):
    """Logits (B, 3): class 0 = the clip's value, and it counts every clip it sees."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, clips):
        value = clips.mean(dim=(1, 2, 3, 4))
        self.seen += value.tolist()
        return torch.stack([value, torch.zeros_like(value), -value], dim=1)


def loader(dataset, batch_size=2):
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate_clips)


def test_every_view_seen_once_and_logits_averaged(tmp_path):
    model = Probe()
    out = predict_views(model, loader(ViewDataset()), num_views=6)
    assert sorted(model.seen) == sorted(10 * i + v for i in range(5) for v in range(6))
    assert out["views_seen"] == 30
    torch.testing.assert_close(out["logits"][:, 0], torch.tensor([10.0 * i + 2.5 for i in range(5)]))
    assert out["video_id"] == [f"v{i}" for i in range(5)]
    rows = write_scores(tmp_path / "s.csv", out).read_text().splitlines()
    assert rows[0] == "video_id,label,score_0,score_1,score_2" and rows[2].startswith("v1,1,12.5,0,-12.5")


def test_wrong_view_count_or_duplicate_video_is_an_error():
    with pytest.raises(GSFDataError, match=r"expects \(B, 3, T"):
        predict_views(Probe(), loader(ViewDataset()), num_views=3)
    with pytest.raises(GSFDataError, match="evaluated twice"):
        predict_views(Probe(), loader(ViewDataset(duplicate=0)), num_views=6)


def test_single_head_metrics():
    logits = torch.tensor([[3.0, 1, 0], [0, 3, 1], [0, 1, 3], [3, 1, 0]])
    labels = torch.tensor([0, 1, 1, 2])
    m = classification_metrics(logits, labels)
    assert m["top1"] == pytest.approx(0.5)
    assert m["top5"] == pytest.approx(1.0)  # k clipped to 3 classes
    assert m["mean_class_acc"] == pytest.approx((1 + 0.5 + 0) / 3)


def test_epic_two_heads_sum_losses_and_action_needs_both_right():
    import torch.nn.functional as F

    from gsf.models import build_model

    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes={"verb": 97, "noun": 300}, dropout=0.0)
    clips = torch.randn(4, 2, 3, 32, 32)
    labels = torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8]])
    out = model(clips)
    loss = loss_fn(out, labels)
    expected = F.cross_entropy(out["verb"], labels[:, 0]) + F.cross_entropy(out["noun"], labels[:, 1])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert model.heads["verb"].weight.grad is not None and model.heads["noun"].weight.grad is not None

    verb = torch.full((4, 97), -5.0)
    noun = torch.full((4, 300), -5.0)
    verb[[0, 1, 2, 3], [1, 3, 0, 0]] = 5  # videos 0, 1 verb right
    noun[[0, 1, 2, 3], [2, 0, 6, 0]] = 5  # videos 0, 2 noun right
    logits = {"verb": verb, "noun": noun}
    assert correct(logits, labels).tolist() == [True, False, False, False]
    m = classification_metrics(logits, labels)
    assert m["verb_top1"] == pytest.approx(0.5) and m["noun_top1"] == pytest.approx(0.5)
    assert m["top1"] == pytest.approx(0.25)  # the action: only video 0 has both right


def test_softmax_option_averages_the_views_scores():
    """The release's --softmax: the softmax of each view, averaged (kept as its log)."""
    out = predict_views(Probe(), loader(ViewDataset(videos=2, views=3)), num_views=3, softmax=True)
    for i in range(2):
        values = torch.tensor([10.0 * i + v for v in range(3)])
        views = torch.stack([values, torch.zeros(3), -values], dim=1)
        torch.testing.assert_close(out["logits"][i], views.softmax(-1).mean(0).log())


def test_train_tests_the_best_checkpoint_at_each_protocol(tiny_config, tmp_path):
    from gsf.engine import train

    result = train(tiny_config("data.test_views=1x1,2x3", "data.test_softmax=false"), tmp_path / "run")
    for protocol in ("1x1", "2x3"):
        for measure in ("top1", "top5", "mean_class_acc"):
            assert 0.0 <= result[f"test_{protocol}_{measure}"] <= 1.0
        assert (tmp_path / "run" / "scores" / f"test_{protocol}.csv").is_file()
    # 1x1 on the validation split is what validation measured at the best epoch, from the same weights
    assert result["test_1x1_top1"] == pytest.approx(result["best_val_top1"])
    # 2x3 is the mean of the logits of six views per video, worked out here from the decoded frames
    expected = _six_view_logits(tmp_path / "run" / "checkpoints" / "best.pt")
    rows = {r["video_id"]: r for r in csv.DictReader((tmp_path / "run" / "scores" / "test_2x3.csv").open())}
    assert sorted(rows) == sorted(expected)
    for video_id, (label, logits) in expected.items():
        assert int(rows[video_id]["label"]) == label
        scores = torch.tensor([float(rows[video_id][f"score_{k}"]) for k in range(len(logits))])
        torch.testing.assert_close(scores, logits, rtol=2e-5, atol=1e-9)  # the file keeps 6 significant digits
    right = [int(logits.argmax()) == label for label, logits in expected.values()]
    assert result["test_2x3_top1"] == pytest.approx(sum(right) / len(right))
    quiet = train(tiny_config("data.test_views=", "optim.epochs=1", "optim.warmup_epochs=0"), tmp_path / "quiet")
    assert not any(key.startswith("test_") for key in quiet)


def test_test_protocols_parse():
    from gsf.engine.config import TrainConfig, parse_protocols
    from gsf.errors import GSFConfigError

    assert TrainConfig().data.test_views == "1x1,2x3"  # the paper's two protocols
    assert parse_protocols("1x1, 2X3,1x10") == ["1x1", "2x3", "1x10"] and parse_protocols("") == []
    for bad in ("2x3,2x3", "1x4", "three"):
        with pytest.raises(GSFConfigError, match="data.test_views"):
            parse_protocols(bad)


def _six_view_logits(checkpoint_path) -> dict[str, tuple[int, torch.Tensor]]:
    """video id -> (label, mean logits of its 2 x 3 views) over the validation split of ``checkpoint_path``'s
    configuration, computed from the decoded frames without the data pipeline (docs/recipe.md): the 2 clips
    are the segment starts and the segment centres of T segments; each frame's shorter side is resized to
    input_size * 256 // 224, and the 3 crops of input_size px are the left, centre and right ones (offsets of
    0, 2 and 4 quarters of the free width, 2 quarters of the free height), normalised with ImageNet's mean
    and std."""
    import json
    from pathlib import Path

    import av
    from torchvision.transforms.v2 import functional as TF

    from gsf.engine.checkpoint import load_checkpoint
    from gsf.models import build_model

    checkpoint = load_checkpoint(checkpoint_path)
    config = checkpoint["config"]
    root, frames, size = Path(config["data"]["root"]), config["data"]["num_frames"], config["data"]["input_size"]
    labels = {name: int(index) for name, index in json.loads((root / "labels.json").read_text()).items()}
    model = build_model(backbone=config["model"]["backbone"], temporal=config["model"]["temporal"],
                        num_classes=len(labels), pretrained="none")
    model.load_state_dict(checkpoint["model"])
    model.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) * 255
    out = {}
    for entry in json.loads((root / "validation.json").read_text()):
        with av.open(str(root / "20bn-something-something-v2" / f"{entry['id']}.webm")) as container:
            decoded = torch.stack([torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1)
                                   for f in container.decode(video=0)])
        tick = len(decoded) / frames
        starts = [int(tick * i) for i in range(frames)]
        centres = [int(tick / 2 + tick * i) for i in range(frames)]
        views = []
        for numbers in (starts, centres):
            clip = TF.resize(decoded[numbers], [size * 256 // 224], antialias=True)
            height, width = clip.shape[-2:]
            top = 2 * ((height - size) // 4)
            for left in (0, 2 * ((width - size) // 4), 4 * ((width - size) // 4)):
                crop = clip[..., top:top + size, left:left + size].float()
                views.append((crop - mean) / std)
        with torch.no_grad():
            logits = model(torch.stack(views))
        out[entry["id"]] = (labels[entry["label"]], logits.mean(dim=0))
    return out
