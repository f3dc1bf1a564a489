"""Bad inputs (docs/reliability.md, "Bad inputs"): each is refused with a message naming the file, field or
value at fault, a non-zero exit code, and nothing written that could pass for a finished result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from gsf.data.fingerprint import FINGERPRINT_FILE
from tests.ports import free_port

from .conftest import REPO, files_under, write_config

TINY_GRID = REPO / "tests" / "experiments" / "tiny.yaml"


def tiny_grid(tmp_path, **change):
    """The sweep tests' tiny grid over TSN and TSM (no GSF: these rows are about the sweep's checks)."""
    grid = yaml.safe_load(TINY_GRID.read_text())
    grid["base_config"] = str((TINY_GRID.parent / grid["base_config"]).resolve())
    grid["axes"] = {"model.temporal": ["none", "tsm"]}
    grid.update(change)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_root):
    """One finished TSM run of one epoch: its folder holds checkpoints/last.pt."""
    from gsf.engine import load_config, train

    folder = tmp_path_factory.mktemp("trained")
    config = load_config(write_config(folder / "tiny.yaml", tiny_root))
    train(config, folder / "run")
    return folder / "run"


def test_malformed_yaml_names_the_file_and_line_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {backbone: resnet_tiny\ndata: [\n")
    out = tmp_path / "out"
    # a real process: the exit code the shell sees
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-m", "gsf", "train", str(bad), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert f"{bad}: invalid YAML" in done.stderr and "line 2" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


def test_unknown_key_names_the_file_and_suggests_the_closest_key(gsf, tmp_path, tiny_config):
    config = tmp_path / "typo.yaml"
    config.write_text(tiny_config.read_text().replace("temporal: tsm", "temporl: tsm"))
    result = gsf("train", config, "--out", tmp_path / "out")
    assert result.code == 2
    assert f"{config}: unknown key 'model.temporl'; did you mean 'model.temporal'?" in result.err
    assert not (tmp_path / "out").exists()


def test_wrong_type_names_the_file_field_and_value(gsf, tmp_path, tiny_config):
    config = tmp_path / "type.yaml"
    config.write_text(tiny_config.read_text().replace("epochs: 1,", "epochs: one,"))
    result = gsf("train", config, "--out", tmp_path / "out")
    assert result.code == 2
    assert f"{config}: optim.epochs: 'one' is not of type int" in result.err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("overrides, expected", [
    (["model.channel_fraction=0.001"], ["layer1.0", "channel_fraction=0.001", "C'=0", "divisible by 2 * groups"]),
    (["model.channel_fraction=1.5"], ["channel_fraction must be a fraction in (0, 1], got 1.5"]),
    (["model.groups=8", "model.channel_fraction=0.125"], ["channel_fraction=0.125", "C'=8", "groups=8"]),
    (["model.groups=3"], ["model.groups=3 is not one of [1, 2, 4, 8]"]),
], ids=["fraction-zero-channels", "fraction-above-one", "groups-do-not-divide", "groups-not-a-choice"])
def test_a_channel_fraction_or_group_count_the_operator_rejects(gsf, tmp_path, tiny_config, overrides, expected):
    argv = ["train", tiny_config, "--set", "model.temporal=gsf", "--out", tmp_path / "out"]
    for text in overrides:
        argv += ["--set", text]
    result = gsf(*argv)
    assert result.code == 2
    for words in expected:
        assert words in result.err
    assert not (tmp_path / "out").exists()


def test_gsf_at_one_frame_is_accepted_and_trains(gsf, tmp_path, tiny_config):
    """T=1: every shift reads outside the clip, so the shifted parts are zeros and GSF reduces to a gated
    residual of the frame itself: mathematically defined, so the suite accepts it."""
    out = tmp_path / "out"
    result = gsf("train", tiny_config, "--set", "model.temporal=gsf", "--set", "data.num_frames=1", "--out", out)
    assert result.code == 0, result.err[-2000:]
    assert (out / "result.json").is_file() and (out / "checkpoints" / "last.pt").is_file()


def test_a_backbone_that_does_not_exist_is_named_with_the_choices(gsf, tmp_path, tiny_config):
    result = gsf("train", tiny_config, "--set", "model.backbone=resnet_nope", "--out", tmp_path / "out")
    assert result.code == 2
    assert "unknown backbone 'resnet_nope' (did you mean 'resnet_tiny'?)" in result.err
    assert "resnet50" in result.err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, expected", [
    ({"axes": {}}, "a grid needs at least one axis"),
    ({"axes": {"model.temporal": []}}, "axes.model.temporal: must be a non-empty list"),
    ({"exclude": [{"model.temporal": "none"}, {"model.temporal": "tsm"}]}, "exclude removes every trial"),
], ids=["no-axes", "empty-axis", "all-excluded"])
def test_an_empty_grid_is_refused_before_any_sweep_state(gsf, tmp_path, tiny_root, change, expected):
    path = tiny_grid(tmp_path, **change)
    dry = gsf("sweep", path, "--dry-run")
    assert dry.code == 2 and f"grid {path}" in dry.err and expected in dry.err
    run = gsf("sweep", path, "--set", f"data.root={tiny_root}", "--storage", tmp_path / "sweeps",
              "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--name", "s")
    assert run.code == 2 and expected in run.err
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_data_root_that_does_not_exist_is_named(gsf, tmp_path, tiny_config):
    missing = tmp_path / "no-such-data"
    result = gsf("train", tiny_config, "--set", f"data.root={missing}", "--out", tmp_path / "out")
    assert result.code == 2
    assert f"data.root='{missing}' is not an existing folder" in result.err
    assert not (tmp_path / "out").exists()
    sweep = gsf("sweep", tiny_grid(tmp_path), "--set", f"data.root={missing}", "--storage", tmp_path / "sweeps",
                "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--name", "s")
    assert sweep.code == 2 and f"data.root='{missing}'" in sweep.err and "--set data.root=PATH" in sweep.err
    assert not (tmp_path / "sweeps").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_corrupt_video_is_named_and_no_checkpoint_or_result_is_written(gsf, tmp_path, tiny_root, tiny_config):
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    video = sorted((root / "20bn-something-something-v2").iterdir())[0]
    video.write_bytes(b"\x1aE\xdf\xa3 not a webm " * 40)
    out = tmp_path / "out"
    result = gsf("train", tiny_config, "--set", f"data.root={root}", "--out", out)
    assert result.code == 2
    assert f"cannot open video {video}" in result.err and "annotation" in result.err
    # the resolved config.yaml and the data fingerprint are written at start; nothing that marks a finished or
    # resumable run
    assert files_under(out) == ["config.yaml", FINGERPRINT_FILE]


def _ssv1_root(folder, missing_frame: int | None = None):
    import torch
    from torchvision.io import encode_jpeg, write_file

    names = ["Holding something", "Pushing something"]
    for vid in ("100", "101", "102", "103"):
        frames = folder / "20bn-something-something-v1" / vid
        frames.mkdir(parents=True)
        for i in range(1, 9):
            write_file(str(frames / f"{i:05d}.jpg"), encode_jpeg(torch.full((3, 32, 32), 20 * i, dtype=torch.uint8)))
    (folder / "something-something-v1-labels.csv").write_text("\n".join(names) + "\n")
    (folder / "something-something-v1-train.csv").write_text("100;Holding something\n101;Pushing something\n")
    (folder / "something-something-v1-validation.csv").write_text("102;Holding something\n103;Pushing something\n")
    return folder


def test_a_missing_frame_is_named_by_validate_and_by_train(gsf, tmp_path, tiny_config):
    root = _ssv1_root(tmp_path / "ssv1")
    gone = root / "20bn-something-something-v1" / "100" / "00004.jpg"
    gone.unlink()
    check = gsf("data", "validate", "--dataset", "ssv1", "--root", root)
    assert check.code == 1
    assert f"BAD frame file not found or unreadable: {gone}" in check.out
    assert "something-something-v1-train.csv:1" in check.out and "1 problem(s)" in check.out
    out = tmp_path / "out"
    result = gsf("train", tiny_config, "--set", f"data.root={root}", "--set", "data.dataset=ssv1",
                 "--set", "data.num_frames=8", "--out", out)
    assert result.code == 2
    assert f"frame file not found or unreadable: {gone}" in result.err
    assert "something-something-v1-train.csv:1" in result.err
    assert files_under(out) == ["config.yaml", FINGERPRINT_FILE]


def test_a_label_out_of_range_names_the_annotation_row(gsf, tmp_path, tiny_root, tiny_config):
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    split = root / "train.json"
    entries = json.loads(split.read_text())
    entries[1].update(label="Flying a cup to the moon", template="Flying [something] to the moon")
    split.write_text(json.dumps(entries))
    out = tmp_path / "out"
    result = gsf("train", tiny_config, "--set", f"data.root={root}", "--out", out)
    assert result.code == 2
    assert f"{split}[1]: class 'Flying something to the moon' is not in labels.json (label out of range)" in result.err
    assert not (out / "checkpoints").exists() and not (out / "result.json").exists()
    check = gsf("data", "validate", "--dataset", "ssv2", "--root", root)
    assert check.code == 1 and "label out of range" in check.out


def test_a_truncated_checkpoint_is_named_for_eval_and_resume(gsf, tmp_path, tiny_config, trained_run):
    data = (trained_run / "checkpoints" / "last.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    result = gsf("eval", tiny_config, "--checkpoint", truncated, "--views", "1x1", "--out", tmp_path / "scores")
    assert result.code == 2
    assert f"checkpoint {truncated} cannot be read: not a PyTorch file, or truncated" in result.err
    assert not (tmp_path / "scores").exists()
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoints" / "last.pt").write_bytes(data[:1000])
    before = files_under(run)
    resumed = gsf("train", tiny_config, "--set", "optim.epochs=2", "--out", run, "--resume")
    assert resumed.code == 2 and f"{run / 'checkpoints' / 'last.pt'} cannot be read" in resumed.err
    assert files_under(run) == before
    assert json.loads((run / "result.json").read_text())["best_epoch"] == 1  # the finished epoch's, untouched


def test_a_checkpoint_of_another_architecture_names_the_differing_knob(gsf, tmp_path, tiny_config, trained_run):
    checkpoint = trained_run / "checkpoints" / "last.pt"
    result = gsf("eval", tiny_config, "--set", "model.temporal=none", "--checkpoint", checkpoint, "--views", "1x1",
                 "--out", tmp_path / "scores")
    assert result.code == 2
    assert (f"{checkpoint} was trained with another architecture (model.temporal: checkpoint 'tsm' vs config "
            "'none')") in result.err
    assert not (tmp_path / "scores").exists()


def test_an_unreachable_tracking_uri_is_named_before_any_sweep_state(gsf, tmp_path, tiny_root):
    uri = f"http://127.0.0.1:{free_port()}"
    result = gsf("sweep", tiny_grid(tmp_path), "--set", f"data.root={tiny_root}", "--storage", tmp_path / "sweeps",
                 "--tracking-uri", uri, "--name", "s")
    assert result.code == 2
    assert f"MLflow tracking server {uri} cannot be reached" in result.err and "--tracking-uri" in result.err
    assert not (tmp_path / "sweeps").exists()
    report = gsf("report", "--tracking-uri", uri, "--out", tmp_path / "report")
    assert report.code == 2 and uri in report.err
    assert not (tmp_path / "report").exists()
    ui = gsf("ui", "--tracking-uri", uri, "--port", free_port(), "--exit-when-ready")
    assert ui.code == 2 and f"MLflow tracking server {uri} cannot be reached" in ui.err
