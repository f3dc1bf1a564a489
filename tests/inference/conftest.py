"""Fixtures of the prediction and export tests: videos encoded here in other containers, codecs, sizes and
frame rates. The trained colour model they classify (``trained``) and its data set are in
``tests/inference/fixtures.py``, which tests/experiments/test_run_logging.py shares.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.inference.fixtures import CLASS_NAMES, render


def encode(path: Path, frames: np.ndarray, *, container: str, codec: str, fps: int) -> Path:
    """Encode ``frames`` (T, H, W, 3) with PyAV in a container and codec of the test's choosing."""
    with av.open(str(path), mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"b:v": "2M"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


# (container, codec, fps, height, width) of videos encoded here, none like the data set's 32 px VP8 WebM
FOREIGN_FORMATS = (
    ("avi", "mpeg4", 25, 40, 48),
    ("matroska", "libx264", 30, 48, 64),
    ("mp4", "libx264", 15, 36, 36),
    ("webm", "libvpx-vp9", 24, 64, 48),
)
SUFFIXES = {"avi": ".avi", "matroska": ".mkv", "mp4": ".mp4", "webm": ".webm"}


@pytest.fixture(scope="session")
def foreign_videos(tmp_path_factory):
    """``[(path, label)]``: one video per format of :data:`FOREIGN_FORMATS`, a different class each (cycling),
    16 frames (the data set has 8), and a folder of JPEG frames in the SSv1 template."""
    import torch
    from torchvision.io import encode_jpeg

    folder = tmp_path_factory.mktemp("foreign")
    videos = []
    for i, (container, codec, fps, height, width) in enumerate(FOREIGN_FORMATS):
        label = i % len(CLASS_NAMES)
        frames = render(label, seed=1000 + i, frames=16, height=height, width=width)
        path = folder / f"clip_{codec}{SUFFIXES[container]}"
        videos.append((encode(path, frames, container=container, codec=codec, fps=fps), label))
    frame_dir = folder / "frames_clip"
    frame_dir.mkdir()
    for n, frame in enumerate(render(1, seed=2000, frames=12, height=36, width=44), start=1):
        jpeg = encode_jpeg(torch.from_numpy(frame).permute(2, 0, 1), quality=95)
        (frame_dir / f"{n:05d}.jpg").write_bytes(jpeg.numpy().tobytes())
    videos.append((frame_dir, 1))
    return videos
