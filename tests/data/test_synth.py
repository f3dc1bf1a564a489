"""The synthetic temporal benchmark: SSv2 release format, time-reversed class pairs, deterministic."""

import json

import numpy as np
import pytest

from gsf.cli import main
from gsf.data import SomethingSomethingV2, mirror_label_swap, synthesize_dataset, synthetic_pairs
from gsf.data.io import VideoFile
from gsf.data.synth import render_clip

FRAMES, SIZE = 8, 32


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthesize_dataset(root, num_classes=12, videos_per_class=3, num_frames=FRAMES, size=SIZE, seed=5)
    return root


def _decode(root, video_id):
    with VideoFile(root / "20bn-something-something-v2" / f"{video_id}.webm") as video:
        return video.frames(range(FRAMES)).permute(0, 2, 3, 1).numpy().astype(float)


def test_release_layout_and_pairs(synth_root):
    labels = json.loads((synth_root / "labels.json").read_text())
    assert synthetic_pairs(labels) == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)]
    names = sorted(labels, key=lambda n: int(labels[n]))
    assert names[0] == "Moving something from left to right" and names[1] == "Moving something from right to left"
    train = SomethingSomethingV2(synth_root, "train", num_frames=4, mode="val")
    val = SomethingSomethingV2(synth_root, "validation", num_frames=4, mode="val")
    assert len(train) == 24 and len(val) == 12
    assert train[0]["video"].shape == (4, 3, SIZE, SIZE)
    # a horizontal flip mirrors left/right and clockwise/anticlockwise, and those labels swap with it
    assert mirror_label_swap(names) == {0: 1, 1: 0, 4: 5, 5: 4}


def test_each_class_is_the_time_reversal_of_its_pair(synth_root):
    labels = json.loads((synth_root / "labels.json").read_text())
    entries = json.loads((synth_root / "train.json").read_text())
    checked = set()
    for entry in entries:
        k = int(labels[entry["label"]])
        decoded = _decode(synth_root, entry["id"])
        # regenerate the same video as its pair's class (no reversal for the second class, reversal for
        # the first), then reverse it: it must be the decoded video up to codec error
        other = render_clip(k // 2, seed=5, video_id=int(entry["id"]), num_frames=FRAMES, size=SIZE, reverse=k % 2 == 0)
        reversed_other = other[::-1].astype(float)
        error = np.abs(decoded - reversed_other)
        same = error.mean()
        # codec tolerance: 4:2:0 chroma blurs colour edges of 32-px textures, the bulk is exact to a few levels
        assert same < 12.0 and np.median(error) <= 4.0, (entry, same)
        if not np.array_equal(other, other[::-1]):
            assert same < np.abs(decoded - other).mean()
        checked.add(k)
    assert checked == set(range(12))


def test_same_seed_same_data_set(tmp_path, synth_root):
    again = tmp_path / "again"
    synthesize_dataset(again, num_classes=12, videos_per_class=3, num_frames=FRAMES, size=SIZE, seed=5)
    for name in ("labels.json", "train.json", "validation.json"):
        assert (again / name).read_text() == (synth_root / name).read_text()
    for entry in json.loads((again / "validation.json").read_text()):
        assert np.array_equal(_decode(again, entry["id"]), _decode(synth_root, entry["id"]))


def test_other_seed_other_data_set(tmp_path, synth_root):
    other = tmp_path / "other"
    synthesize_dataset(other, num_classes=12, videos_per_class=3, num_frames=FRAMES, size=SIZE, seed=6)
    assert (other / "labels.json").read_text() == (synth_root / "labels.json").read_text()  # the same classes
    ours, theirs = ({e["id"]: e for split in ("train", "validation")
                     for e in json.loads((root / f"{split}.json").read_text())} for root in (synth_root, other))
    assert sorted(ours) == sorted(theirs)
    assert any(ours[i]["label"] != theirs[i]["label"] for i in ours)  # the ids are dealt to classes anew
    for video_id in ours:  # and every video is another one: far beyond the codec's error of a few levels
        assert np.abs(_decode(other, video_id) - _decode(synth_root, video_id)).mean() > 12.0, video_id


def test_cli_synth_then_validate(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["data", "synth", "--out", str(out), "--classes", "4", "--videos-per-class", "2", "--frames", "6",
            "--size", "32", "--seed", "1"]
    assert main(args) == 0
    assert "time-reversed pairs [(0, 1), (2, 3)]" in capsys.readouterr().out
    assert main(["data", "validate", "--dataset", "ssv2", "--root", str(out), "--split", "validation"]) == 0
    assert main(["data", "synth", "--out", str(out), "--classes", "3"]) == 2
    assert "num_classes must be even" in capsys.readouterr().err


def count_opened_videos(monkeypatch) -> list:
    """The paths of the videos the data sets open from now on, in order."""
    from gsf.data import datasets

    opened = []

    class CountingVideoFile(VideoFile):
        def __init__(self, path, **kw):
            opened.append(path)
            super().__init__(path, **kw)

    monkeypatch.setattr(datasets, "VideoFile", CountingVideoFile)
    return opened


@pytest.mark.parametrize("mode", ["train", "test"])
def test_decoded_cache_gives_the_same_clips_and_decodes_each_video_once(synth_root, monkeypatch, mode):
    import random

    import torch

    kwargs = dict(num_frames=4, mode=mode, num_clips=2 if mode == "test" else 1)
    plain = SomethingSomethingV2(synth_root, "train", **kwargs)
    cached = SomethingSomethingV2(synth_root, "train", cache_decoded=True, **kwargs)
    opened = count_opened_videos(monkeypatch)
    for epoch in range(2):  # the second epoch comes from memory
        for i in range(len(plain)):
            random.seed(100 * epoch + i)
            expected = plain[i]["video"]
            random.seed(100 * epoch + i)
            assert torch.equal(cached[i]["video"], expected), (epoch, i)
    assert len(opened) == 3 * len(plain)  # plain: twice per video; cached: once


def test_data_sets_given_one_decoded_cache_decode_each_video_once_between_them(synth_root, monkeypatch):
    import torch

    shared: dict = {}
    one_view = SomethingSomethingV2(synth_root, "train", num_frames=4, mode="test", cache_decoded=True,
                                    decoded_cache=shared)
    two_clips = SomethingSomethingV2(synth_root, "train", num_frames=4, mode="test", num_clips=2,
                                     cache_decoded=True, decoded_cache=shared)
    own = SomethingSomethingV2(synth_root, "train", num_frames=4, mode="test", cache_decoded=True)
    opened = count_opened_videos(monkeypatch)
    for i in range(len(one_view)):
        first, second = one_view[i]["video"], two_clips[i]["video"]
        assert first.shape[0] == 1 and second.shape[0] == 2
        assert torch.equal(own[i]["video"], first)
    assert len(shared) == len(one_view)
    assert len(opened) == 2 * len(one_view)  # once for the two sharing a cache, once for the one with its own
