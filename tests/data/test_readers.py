"""Every release-format reader loads its fixture (docs/data-formats.md) and reads the frames sampling asks for."""

import json

import pytest
import torch

from gsf.data import (
    Diving48,
    EpicKitchens100,
    Kinetics400,
    SomethingSomethingV1,
    SomethingSomethingV2,
    TSNList,
    build_dataset,
    collate_clips,
)
from gsf.data.io import VideoFile
from gsf.data.sampling import segment_offsets
from gsf.errors import GSFDataError

from .builders import SS_CLASSES, frame_index_of, grey_frames, write_video


def _centres(n, t):
    return segment_offsets(n, t, "val")[0].tolist()


def test_ssv1_reads_jpeg_folders_with_sorted_class_labels(ssv1_root):
    ds = SomethingSomethingV1(ssv1_root, "train", num_frames=4, mode="val")
    assert len(ds) == 2 and ds.class_names == sorted(SS_CLASSES)
    item = ds[1]
    assert item["video"].shape == (4, 3, 32, 40) and item["video"].dtype == torch.float32
    assert item["label"].item() == sorted(SS_CLASSES).index("Pushing something from left to right")
    assert item["label"].dtype == torch.int64 and item["video_id"] == "101" and item["index"] == 1
    # files 00001.jpg.. are 1-based: offset o reads file o + 1, i.e. frame o
    assert frame_index_of(item["video"]) == _centres(9, 4)


def test_ssv2_reads_webm_and_labels_dir(ssv2_root):
    ds = SomethingSomethingV2(ssv2_root, "train", num_frames=4, mode="val")
    assert [r.video_id for r in ds.records] == ["7", "8"]
    item = ds[0]
    assert item["label"].item() == 1 and item["video"].shape == (4, 3, 32, 40)
    assert frame_index_of(item["video"]) == _centres(14, 4)


def test_ssv2_accepts_older_file_names_at_the_root(ssv2_root):
    for name in ("labels", "train", "validation"):
        (ssv2_root / "labels" / f"{name}.json").rename(ssv2_root / f"something-something-v2-{name}.json")
    ds = SomethingSomethingV2(ssv2_root, "validation", num_frames=2, mode="val")
    assert len(ds) == 1 and ds[0]["label"].item() == 0


def test_diving48_uses_start_and_end_frames(diving48_root):
    ds = Diving48(diving48_root, "train", num_frames=4, mode="val")
    item = ds[0]
    assert item["label"].item() == 3
    assert frame_index_of(item["video"]) == [4 + o for o in _centres(16, 4)]
    assert ds[1]["label"].item() == 47


def test_kinetics_reads_class_folders_and_flat_split_folders(kinetics_root):
    train = Kinetics400(kinetics_root, "train", num_frames=3, mode="val")
    assert train.class_names == ["abseiling", "air drumming"]
    assert [r.label for r in train.records] == [1, 0]
    assert frame_index_of(train[0]["video"]) == _centres(10, 3)
    val = Kinetics400(kinetics_root, "val", num_frames=3, mode="val")
    assert val[0]["label"].item() == 0 and val[0]["video_id"] == "ccccccccccc_000012_000022"


def test_epic_reads_frames_and_videos_with_verb_noun_labels(epic_root):
    ds = EpicKitchens100(epic_root, "train", num_frames=4, mode="val")
    frames_item, video_item = ds[0], ds[1]
    assert frames_item["label"].tolist() == [2, 7] and frames_item["label"].shape == (2,)
    assert video_item["label"].tolist() == [96, 299]
    # start_frame 5 (1-based) is frame_0000000005.jpg, i.e. 0-based frame 4
    assert frame_index_of(frames_item["video"]) == [4 + o for o in _centres(16, 4)]
    assert frame_index_of(video_item["video"]) == [2 + o for o in _centres(16, 4)]


def test_tsn_list_detects_the_frame_template(tsn_list_root):
    ds = TSNList(tsn_list_root / "train_list.txt", tsn_list_root, num_frames=5, mode="val")
    assert ds.records[0].frame_template == "img_{:05d}.jpg"
    assert ds[0]["label"].item() == 3 and frame_index_of(ds[0]["video"]) == _centres(10, 5)
    assert ds[1]["label"].item() == 0


def test_build_dataset_test_views_have_clips_times_crops(ssv2_root):
    ds = build_dataset("ssv2", ssv2_root, "train", num_frames=4, mode="test", input_size=28, num_clips=2, num_crops=3)
    video = ds[0]["video"]
    assert video.shape == (6, 4, 3, 28, 28)  # the release's 3 input-size crops of the 32-px shorter side
    raw = SomethingSomethingV2(ssv2_root, "train", num_frames=4, mode="test", num_clips=2)[0]["video"]
    assert raw.shape == (2, 4, 3, 32, 40)
    assert frame_index_of(raw) == segment_offsets(14, 4, "test", num_clips=2).ravel().tolist()
    one = build_dataset("ssv2", ssv2_root, "train", num_frames=4, mode="val", input_size=28)
    assert one[0]["video"].shape == (4, 3, 28, 28)


def test_train_items_have_input_size_and_frames_within_segments(ssv1_root):
    ds = build_dataset("ssv1", ssv1_root, "validation", num_frames=4, mode="train", input_size=24, randaugment=False)
    assert ds.records[0].video_id == "102"  # 20 frames: 4 segments of 5, frames 0-4, 5-9, 10-14, 15-19
    augment = ds.transform
    read = []  # the frames each item decoded, before the augmentation crops and flips them

    def recording(clip, label):
        read.append(frame_index_of(clip))
        return augment(clip, label)

    ds.transform = recording
    for _ in range(20):
        assert ds[0]["video"].shape == (4, 3, 24, 24)
    for frames in read:
        assert [f // 5 for f in frames] == [0, 1, 2, 3], frames
    assert len({tuple(frames) for frames in read}) > 1  # a random frame of each segment, not a fixed one


def test_video_reader_returns_requested_frames_in_any_order(tmp_path):
    path = write_video(tmp_path / "v.mp4", grey_frames(100))
    with VideoFile(path) as video:
        assert video.num_frames == 100
        got = video.frames([90, 3, 3, 60, 99])  # 90 - 3 > SEEK_GAP_FRAMES: exercises a seek
    assert frame_index_of(got) == [90, 3, 3, 60, 99]


def test_missing_sample_raises_naming_file_and_row(ssv1_root):
    ds = SomethingSomethingV1(ssv1_root, "train", num_frames=4, mode="val")
    (ssv1_root / "20bn-something-something-v1" / "100" / "00005.jpg").unlink()
    with pytest.raises(GSFDataError, match=r"00005\.jpg.*|something-something-v1-train\.csv:1") as info:
        ds[0]
    assert "something-something-v1-train.csv:1" in str(info.value) and "00005.jpg" in str(info.value)


def test_skip_bad_samples_counts_and_never_substitutes(ssv2_root):
    (ssv2_root / "20bn-something-something-v2" / "7.webm").write_bytes(b"not a video")
    strict = SomethingSomethingV2(ssv2_root, "train", num_frames=2, mode="val")
    with pytest.raises(GSFDataError, match="7.webm"):
        strict[0]
    ds = SomethingSomethingV2(ssv2_root, "train", num_frames=2, mode="val", skip_bad_samples=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_clips)
    batch = next(iter(loader))
    assert batch["skipped"] == ["7"] and batch["video_id"] == ["8"] and batch["video"].shape[0] == 1
    assert ds.num_skipped == 1 and ds.skipped[0][1] == "7"


def test_bad_annotation_row_is_named(ssv2_root):
    path = ssv2_root / "labels" / "train.json"
    path.write_text(json.dumps([{"id": "7"}]))
    with pytest.raises(GSFDataError, match=r"train\.json\[0\].*template"):
        SomethingSomethingV2(ssv2_root, "train")
