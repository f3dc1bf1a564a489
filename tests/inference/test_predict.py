"""gsf.inference.predict and ``gsf predict``: held-out and foreign videos classified with the model's own
preprocessing, class names from the label file, bad files named and skipped."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from gsf.cli import main
from gsf.inference.predict import Predictor, default_views, read_views
from tests.inference.fixtures import CLASS_NAMES


@pytest.fixture(scope="module")
def predictor(trained):
    return Predictor.from_checkpoint(trained["checkpoint"])


def test_preprocessing_is_the_models_own(predictor, trained):
    prep = predictor.preprocessing
    config = trained["config"]
    assert prep.class_names == CLASS_NAMES  # read from labels.json of the data set the checkpoint names
    assert (prep.num_frames, prep.input_size, prep.normalisation, prep.views) == (
        config.data.num_frames, config.data.input_size, "resnet", "1x1")
    assert (prep.three_crop, prep.test_sampling, prep.softmax) == (
        config.data.test_three_crops, config.data.test_sampling, config.data.test_softmax)


def test_held_out_videos_are_classified_from_their_files(predictor, trained):
    right = 0
    for path, label in trained["held_out"]:
        best = predictor.predict(path, k=2)
        assert [c["label"] for c in best] == [CLASS_NAMES[c["index"]] for c in best]
        assert best[0]["score"] >= best[1]["score"]
        right += best[0]["index"] == label
    assert right >= 0.75 * len(trained["held_out"])


def test_videos_the_project_did_not_write(predictor, foreign_videos):
    """Other containers and codecs (AVI/MPEG-4, MKV/H.264, MP4/H.264, WebM/VP9), sizes, frame rates and
    clip lengths, and a folder of JPEG frames."""
    predicted = [predictor.predict(path, k=1)[0]["index"] for path, _ in foreign_videos]
    assert predicted == [label for _, label in foreign_videos]


def test_views_are_the_test_views_of_the_data_package(predictor, foreign_videos):
    path = foreign_videos[0][0]
    views = read_views(path, predictor.preprocessing, "2x3")
    assert views.shape == (6, 4, 3, 32, 32) and views.dtype == torch.float32
    # the same clips as a 2x3 multi-view test: logits averaged over the 6 views
    per_view = torch.stack([predictor.forward(v[None]).reshape(-1) for v in views])
    assert torch.allclose(predictor.logits(path, views="2x3"), per_view.mean(0), atol=1e-5)


def test_softmax_protocol_averages_the_views_scores(predictor, foreign_videos):
    path = foreign_videos[0][0]
    prep = dataclasses.replace(predictor.preprocessing, softmax=True)  # data.test_softmax: true
    per_view = torch.stack([predictor.forward(v[None]).reshape(-1) for v in read_views(path, prep, "2x3")])
    averaged = Predictor(predictor.forward, prep, source="test").logits(path, views="2x3")
    assert torch.allclose(averaged, per_view.softmax(-1).mean(0).log(), atol=1e-5)


def test_default_views_is_the_largest_test_protocol():
    assert default_views("1x1,2x3") == "2x3"
    assert default_views("1x1") == "1x1"


def test_cli_json_lists_every_video_best_first(trained, foreign_videos, capsys):
    videos = [str(p) for p, _ in trained["held_out"][:3]] + [str(foreign_videos[1][0])]
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--json", "--top-k", "3", *videos]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["video"] for r in results] == videos
    for r in results:
        scores = [c["score"] for c in r["top_k"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and sum(scores) <= 1 + 1e-6
        assert {c["label"] for c in r["top_k"]} <= set(CLASS_NAMES)
        assert set(r["top_k"][0]) == {"label", "index", "score"}


def test_bad_files_are_named_and_skipped_the_others_predicted(trained, tmp_path, capsys):
    good = [str(p) for p, _ in trained["held_out"][:2]]
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 40)
    truncated = tmp_path / "truncated.webm"
    truncated.write_bytes(trained["held_out"][0][0].read_bytes()[:200])
    missing = tmp_path / "missing.mkv"
    videos = [good[0], str(garbage), str(truncated), good[1], str(missing)]
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--json", *videos]) == 1
    captured = capsys.readouterr()
    assert [r["video"] for r in json.loads(captured.out)] == good
    for bad in (garbage, truncated, missing):
        assert f"error: {bad} skipped" in captured.err
    assert "3 of 5 videos could not be read" in captured.err


def test_text_output_names_each_video_and_its_classes(trained, capsys):
    path, label = trained["held_out"][-1]
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--top-k", "2", str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: {CLASS_NAMES[label]} (")


def test_a_checkpoint_passed_as_model_file_is_refused_clearly(trained, capsys):
    assert main(["predict", "--model", str(trained["checkpoint"]), str(trained["held_out"][0][0])]) == 2
    assert "use --checkpoint" in capsys.readouterr().err


def test_bad_views_and_top_k_are_refused(trained, capsys):
    video = str(trained["held_out"][0][0])
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--views", "2by3", video]) == 2
    assert "2by3" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(trained["checkpoint"]), "--top-k", "0", video]) == 2


def test_a_model_uri_without_a_store_is_refused_without_writing_anything(tmp_path, monkeypatch, capsys):
    """MLflow's fallback store is ./mlflow.db, which it would create in the working folder."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert main(["predict", "--model", "models:/gsf-demo/1", str(video)]) == 2
    err = capsys.readouterr().err
    assert "models:/gsf-demo/1 names a model in an MLflow store, but no store is given" in err
    assert "--tracking-uri" in err and "MLFLOW_TRACKING_URI" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
