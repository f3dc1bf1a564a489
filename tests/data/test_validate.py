"""``gsf data validate`` names every kind of bad sample and exits non-zero."""

import json

import pytest

from gsf.cli import main

from .builders import RELEASE_FORMAT_ROOTS, grey_frames, write_video


def _validate(capsys, dataset, root, split="train", *extra):
    code = main(["data", "validate", "--dataset", dataset, "--root", str(root), "--split", split, *extra])
    return code, capsys.readouterr().out


@pytest.mark.parametrize(
    "fixture,dataset,split",
    RELEASE_FORMAT_ROOTS,
)
def test_clean_data_sets_pass(request, capsys, fixture, dataset, split):
    code, out = _validate(capsys, dataset, request.getfixturevalue(fixture), split)
    assert code == 0, out
    assert "OK" in out


def test_missing_file_is_named(capsys, kinetics_root):
    (kinetics_root / "train" / "abseiling" / "bbbbbbbbbbb_000000_000010.mp4").unlink()
    code, out = _validate(capsys, "kinetics400", kinetics_root)
    assert code == 1
    assert "BAD video file not found" in out and "bbbbbbbbbbb_000000_000010.mp4" in out and "train.csv:3" in out


def test_corrupt_video_is_named(capsys, ssv2_root):
    path = ssv2_root / "20bn-something-something-v2" / "8.webm"
    path.write_bytes(path.read_bytes()[:300])
    code, out = _validate(capsys, "ssv2", ssv2_root)
    assert code == 1 and "8.webm" in out and "1 problem(s)" in out


def test_too_few_frames_are_named(capsys, diving48_root, tsn_list_root):
    write_video(diving48_root / "rgb" / "abc_00002.mp4", grey_frames(5))  # annotation says 0..8
    code, out = _validate(capsys, "diving48", diving48_root)
    assert code == 1 and "abc_00002.mp4: too few frames" in out
    (tsn_list_root / "train_list.txt").write_text("vid_a 10 3\nvid_b 9 0\n")  # vid_b has 6
    code, out = _validate(capsys, "list", tsn_list_root, "train_list.txt")
    assert code == 1 and "vid_b: too few frames" in out and "train_list.txt:2" in out


def test_label_out_of_range_is_named(capsys, epic_root, ssv1_root, tsn_list_root):
    lines = (epic_root / "EPIC_100_train.csv").read_text().splitlines()
    lines[1] = lines[1].replace(",2,cup,7,", ",97,cup,7,")
    (epic_root / "EPIC_100_train.csv").write_text("\n".join(lines) + "\n")
    code, out = _validate(capsys, "epic100", epic_root)
    assert code == 1 and "EPIC_100_train.csv:2" in out and "out of range" in out
    (ssv1_root / "something-something-v1-train.csv").write_text("100;Juggling something\n")
    code, out = _validate(capsys, "ssv1", ssv1_root)
    assert code == 1 and "something-something-v1-train.csv:1" in out and "Juggling" in out
    code, out = _validate(capsys, "list", tsn_list_root, "train_list.txt", "--num-classes", "2")
    assert code == 1 and "train_list.txt:1: label 3 out of range" in out


def test_missing_field_is_named(capsys, diving48_root, ssv2_root):
    entries = json.loads((diving48_root / "Diving48_V2_train.json").read_text())
    del entries[1]["end_frame"]
    (diving48_root / "Diving48_V2_train.json").write_text(json.dumps(entries))
    code, out = _validate(capsys, "diving48", diving48_root)
    assert code == 1 and "Diving48_V2_train.json[1]: missing field end_frame" in out
    (ssv2_root / "labels" / "train.json").write_text(json.dumps([{"id": "7", "label": "x"}]))
    code, out = _validate(capsys, "ssv2", ssv2_root)
    assert code == 1 and "train.json[0]: missing field" in out


def test_missing_frame_in_a_folder_is_named(capsys, epic_root):
    (epic_root / "P01" / "rgb_frames" / "P01_01" / "frame_0000000007.jpg").unlink()
    code, out = _validate(capsys, "epic100", epic_root)
    assert code == 1 and "P01_01" in out and "EPIC_100_train.csv:2" in out


def test_missing_annotation_file_is_an_error(capsys, tmp_path):
    code, out = _validate(capsys, "ssv2", tmp_path)
    assert code == 1 and "annotation file not found" in out
