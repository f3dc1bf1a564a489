"""`gsf train` and `gsf eval` end to end through the dispatcher (gsf.cli.main)."""

import csv
import json

import torch
import yaml

from gsf.cli import main
from gsf.engine.checkpoint import load_checkpoint

from .conftest import TINY


def write_config(tmp_path, synth_root):
    sections = {}
    for item in [*TINY, f"data.root={synth_root}", "optim.epochs=1", "optim.warmup_epochs=0"]:
        key, value = item.split("=", 1)
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = yaml.safe_load(value)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(sections))
    return path


def test_train_then_eval_multi_view(tmp_path, synth_root, capsys):
    config = write_config(tmp_path, synth_root)
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--set", "model.temporal=tsm"]) == 0
    assert "final val top-1" in capsys.readouterr().out
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["temporal"] == "tsm"
    checkpoint = out / "checkpoints" / "last.pt"
    assert main(["eval", str(config), "--checkpoint", str(checkpoint), "--views", "2x3",
                 "--set", "model.temporal=tsm"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["views_seen"] == 2 * 6 and result["videos"] == 2
    assert 0 <= result["test_top1"] <= 1
    with open(out / "scores" / "test_2x3.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and set(rows[0]) == {"video_id", "label", "score_0", "score_1"}

    # a checkpoint of another architecture is refused with a clear message
    assert main(["eval", str(config), "--checkpoint", str(checkpoint), "--set", "model.temporal=gsf"]) == 2
    assert "another architecture" in capsys.readouterr().err


def test_eval_reads_an_authors_checkpoint(tmp_path, synth_root, capsys):
    from gsf.models import build_model

    config = write_config(tmp_path, synth_root)
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=2)
    authors = {}
    for key, value in model.state_dict().items():  # our keys -> the release's (docs/gsf-operator.md section 2)
        if key.startswith("head."):
            authors["module.new_fc." + key[5:]] = value
        else:
            authors["module.base_model." + key[len("backbone."):].replace(".temporal_after_conv3.", ".gsf.")] = value
    path = tmp_path / "authors.pth.tar"
    torch.save({"model_state_dict": authors, "epoch": 3, "best_prec1": 0.5}, path)
    assert main(["eval", str(config), "--checkpoint", str(path), "--views", "1x1", "--out", str(tmp_path / "ev")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["videos"] == 2 and (tmp_path / "ev" / "scores" / "test_1x1.csv").is_file()


def test_cli_reports_config_errors_without_traceback(tmp_path, synth_root, capsys):
    config = write_config(tmp_path, synth_root)
    assert main(["train", str(config), "--out", str(tmp_path / "r"), "--set", "optim.lrr=1"]) == 2
    assert "did you mean 'optim.lr'" in capsys.readouterr().err
    assert main(["train", "--show-config"]) == 0
    assert "clip_grad_norm: 20.0" in capsys.readouterr().out


def test_checkpoint_written_by_train_loads_weights_only(tmp_path, synth_root):
    config = write_config(tmp_path, synth_root)
    assert main(["train", str(config), "--out", str(tmp_path / "r"), "--set", "optim.epochs=1",
                 "--set", "data.max_videos=3"]) == 0
    state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["step"] == 1
