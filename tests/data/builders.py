"""Builders of tiny data sets in the official release layouts (docs/data-formats.md), written into a tmp_path.

Frame ``i`` (0-based) of every fixture video or frame folder is a flat grey of value ``frame_value(i)``,
so a test can tell from the pixels which frame was read.
"""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg, write_file

SIZE = 32


def frame_value(i: int) -> tuple[int, int]:
    """Grey levels of the left and right halves of frame ``i`` (up to 400 frames)."""
    return 20 + 10 * (i // 20), 20 + 10 * (i % 20)


def grey_frames(n: int, size: int = SIZE) -> np.ndarray:
    frames = np.empty((n, size, size + 8, 3), np.uint8)
    half = (size + 8) // 2
    for i in range(n):
        frames[i, :, :half], frames[i, :, half:] = frame_value(i)
    return frames


def frame_index_of(frames: torch.Tensor) -> list[int]:
    """Invert ``frame_value`` for each frame of ``(..., 3, H, W)`` (outer quarters, away from the edge)."""
    flat = frames.reshape(-1, *frames.shape[-3:]).float()
    quarter = flat.shape[-1] // 4
    left = flat[..., :quarter].mean(dim=(1, 2, 3))
    right = flat[..., -quarter:].mean(dim=(1, 2, 3))
    return [int(round((a.item() - 20) / 10)) * 20 + int(round((b.item() - 20) / 10)) for a, b in zip(left, right)]


def write_video(path: Path, frames: np.ndarray, *, codec: str = "mpeg4", fps: int = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "webm" if path.suffix == ".webm" else "mp4"
    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"b:v": "2M", "g": "5"} if codec == "mpeg4" else {"crf": "4", "b:v": "2M", "g": "5"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_frames(folder: Path, frames: np.ndarray, template: str, first: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, array in enumerate(frames):
        data = encode_jpeg(torch.from_numpy(array).permute(2, 0, 1).contiguous(), quality=95)
        write_file(str(folder / template.format(first + i)), data)
    return folder


SS_CLASSES = [
    "Pushing something from left to right",
    "Pushing something from right to left",
    "Holding something",
    "Turning the camera left while filming something",
    "Turning the camera right while filming something",
]


@pytest.fixture
def ssv1_root(tmp_path: Path) -> Path:
    root = tmp_path / "ssv1"
    frames_dir = root / "20bn-something-something-v1"
    for vid, n in (("100", 12), ("101", 9), ("102", 20)):
        write_frames(frames_dir / vid, grey_frames(n), "{:05d}.jpg")
    root.joinpath("something-something-v1-labels.csv").write_text("\n".join(SS_CLASSES) + "\n")
    root.joinpath("something-something-v1-train.csv").write_text(
        "100;Holding something\n101;Pushing something from left to right\n"
    )
    root.joinpath("something-something-v1-validation.csv").write_text("102;Turning the camera right while filming something\n")
    return root


def _ssv2_entry(vid: str, name: str) -> dict:
    template = name.replace("something", "[something]")
    return {"id": vid, "label": name, "template": template, "placeholders": ["a cup"]}


@pytest.fixture
def ssv2_root(tmp_path: Path) -> Path:
    root = tmp_path / "ssv2"
    videos = root / "20bn-something-something-v2"
    for vid, n in (("7", 14), ("8", 10)):
        write_video(videos / f"{vid}.webm", grey_frames(n), codec="libvpx")
    labels = root / "labels"
    labels.mkdir(parents=True)
    labels.joinpath("labels.json").write_text(json.dumps({n: str(i) for i, n in enumerate(SS_CLASSES)}))
    labels.joinpath("train.json").write_text(
        json.dumps([_ssv2_entry("7", SS_CLASSES[1]), _ssv2_entry("8", SS_CLASSES[2])])
    )
    labels.joinpath("validation.json").write_text(json.dumps([_ssv2_entry("8", SS_CLASSES[0])]))
    return root


@pytest.fixture
def diving48_root(tmp_path: Path) -> Path:
    root = tmp_path / "diving48"
    write_video(root / "rgb" / "abc_00001.mp4", grey_frames(20))
    write_video(root / "rgb" / "abc_00002.mp4", grey_frames(8))
    vocab = [["Back", "15som", "05Twis", "FREE"]] * 48
    root.joinpath("Diving48_vocab.json").write_text(json.dumps(vocab))
    entries = [
        {"vid_name": "abc_00001", "label": 3, "start_frame": 4, "end_frame": 20},
        {"vid_name": "abc_00002", "label": 47, "start_frame": 0, "end_frame": 8},
    ]
    root.joinpath("Diving48_V2_train.json").write_text(json.dumps(entries))
    root.joinpath("Diving48_V2_test.json").write_text(json.dumps(entries[:1]))
    return root


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def kinetics_root(tmp_path: Path) -> Path:
    """Train split in class folders, val split flat; CSVs in annotations/."""
    root = tmp_path / "kinetics400"
    header = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
    train = [["air drumming", "aaaaaaaaaaa", 5, 15, "train", 0], ["abseiling", "bbbbbbbbbbb", 0, 10, "train", 0]]
    val = [["abseiling", "ccccccccccc", 12, 22, "val", 0]]
    write_csv(root / "annotations" / "train.csv", header, train)
    write_csv(root / "annotations" / "validate.csv", header, val)
    write_video(root / "train" / "air_drumming" / "aaaaaaaaaaa_000005_000015.mp4", grey_frames(10))
    write_video(root / "train" / "abseiling" / "bbbbbbbbbbb_000000_000010.mp4", grey_frames(11))
    write_video(root / "val" / "ccccccccccc_000012_000022.mp4", grey_frames(9))
    return root


EPIC_HEADER = [
    "narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp", "stop_timestamp",
    "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun", "noun_class", "all_nouns",
    "all_noun_classes",
]


def epic_row(nid, pid, vid, start, stop, verb, noun):
    return [nid, pid, vid, "00:00:01.0", "00:00:01.0", "00:00:02.0", start, stop, "take cup", "take", verb,
            "cup", noun, "['cup']", f"[{noun}]"]


@pytest.fixture
def epic_root(tmp_path: Path) -> Path:
    """P01_01 as a frame folder, P02_01 as a video."""
    root = tmp_path / "epic100"
    write_frames(root / "P01" / "rgb_frames" / "P01_01", grey_frames(24), "frame_{:010d}.jpg")
    write_video(root / "P02" / "videos" / "P02_01.MP4", grey_frames(24))
    rows = [epic_row("P01_01_0", "P01", "P01_01", 5, 20, 2, 7), epic_row("P02_01_0", "P02", "P02_01", 3, 18, 96, 299)]
    write_csv(root / "EPIC_100_train.csv", EPIC_HEADER, rows)
    write_csv(root / "EPIC_100_validation.csv", EPIC_HEADER, rows[:1])
    return root


@pytest.fixture
def tsn_list_root(tmp_path: Path) -> Path:
    root = tmp_path / "frames"
    write_frames(root / "vid_a", grey_frames(10), "img_{:05d}.jpg")
    write_frames(root / "vid_b", grey_frames(6), "img_{:05d}.jpg")
    root.joinpath("train_list.txt").write_text("vid_a 10 3\nvid_b 6 0\n")
    return root


# (fixture, --dataset, --split) of one small root of every format the release reads, for parametrised tests
RELEASE_FORMAT_ROOTS = [
    ("ssv1_root", "ssv1", "train"),
    ("ssv2_root", "ssv2", "train"),
    ("diving48_root", "diving48", "train"),
    ("kinetics_root", "kinetics400", "train"),
    ("epic_root", "epic100", "train"),
    ("tsn_list_root", "list", "train_list.txt"),
]
