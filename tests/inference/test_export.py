"""gsf.inference.export and ``gsf export``: each format predicts as the checkpoint does, carries its
preprocessing, and is refused when it differs from the eager model."""

from __future__ import annotations

import onnx
import pytest
import torch

from gsf.cli import main
from gsf.inference import export as export_module
from gsf.inference.predict import METADATA_KEY, Predictor, load_model_file, model_file_format

SUFFIX = {"onnx": ".onnx", "torchscript": ".ts", "exported-program": ".pt2"}


@pytest.fixture(scope="module")
def checkpoint_top1(trained, foreign_videos):
    predictor = Predictor.from_checkpoint(trained["checkpoint"])
    videos = [p for p, _ in trained["held_out"]] + [p for p, _ in foreign_videos]
    return {video: predictor.predict(video, k=1)[0]["index"] for video in videos}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", pytest.param("exported-program", marks=pytest.mark.slow)])
def test_exported_model_gives_the_checkpoints_top1_for_every_file(fmt, trained, checkpoint_top1, tmp_path, capsys):
    out = tmp_path / f"model{SUFFIX[fmt]}"
    assert main(["export", "--checkpoint", str(trained["checkpoint"]), "--format", fmt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "largest |exported - eager| logit difference" in printed and str(out) in printed
    assert model_file_format(out) == fmt
    predictor = Predictor.from_model_file(out)
    assert predictor.preprocessing == Predictor.from_checkpoint(trained["checkpoint"]).preprocessing
    assert {video: predictor.predict(video, k=1)[0]["index"] for video in checkpoint_top1} == checkpoint_top1


def test_onnx_file_carries_the_preprocessing_in_its_metadata(trained, tmp_path):
    result = export_module.export_model(trained["checkpoint"], format="onnx", out=tmp_path / "m.onnx", frames=8)
    graph = onnx.load(str(result.path))
    props = {p.key: p.value for p in graph.metadata_props}
    assert '"num_frames": 8' in props[METADATA_KEY] and "Showing a red scene" in props[METADATA_KEY]
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 8, 3, 32, 32]
    forward, prep = load_model_file(result.path)
    assert prep.num_frames == 8 and forward(torch.zeros(1, 8, 3, 32, 32)).shape == (1, 4)
    assert result.max_abs_diff <= result.tolerance * result.logit_scale


def test_an_export_that_differs_from_the_eager_model_is_removed_and_fails(trained, tmp_path, monkeypatch, capsys):
    real = export_module.load_model_file

    def off_by_a_bit(path):
        forward, prep = real(path)
        return (lambda view: forward(view) + 1e-2), prep

    monkeypatch.setattr(export_module, "load_model_file", off_by_a_bit)
    out = tmp_path / "bad.onnx"
    assert main(["export", "--checkpoint", str(trained["checkpoint"]), "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "rejected and removed" in err and "differ from the eager model's by up to 0.01" in err
    assert not out.exists()


def test_bad_export_arguments_are_named(trained, tmp_path, capsys):
    out = str(tmp_path / "m.onnx")
    assert main(["export", "--checkpoint", str(trained["checkpoint"]), "--format", "onnx", "--out", out,
                 "--frames", "0"]) == 2
    assert "--frames 0" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(tmp_path / "none.pt"), "--format", "onnx", "--out", out]) == 2
    assert "none.pt does not exist" in capsys.readouterr().err
