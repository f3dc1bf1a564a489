"""Reading frames: PyAV for videos (seek, then decode only up to the frames needed), torchvision for JPEG
frame folders. Every failure raises :class:`GSFDataError` naming the file."""

from __future__ import annotations

import os
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torchvision.io import ImageReadMode, decode_jpeg, read_file

from gsf.errors import GSFDataError

# When the next frame needed lies more than this many frames past the decoder, seek instead of decoding
# through the gap (a keyframe is usually closer than that in released videos).
SEEK_GAP_FRAMES = 48
# Container metadata may over-count a stream by a frame or two; requests that far past the last decoded
# frame get the last frame of the same video, larger ones are an error.
END_TOLERANCE_FRAMES = 2


class VideoFile:
    """An open video with frame-accurate random access by 0-based frame index.

    Use as a context manager: ``with VideoFile(path) as video: frames = video.frames([0, 5, 9])``.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 1) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise GSFDataError(f"video file not found: {self.path}")
        try:
            self._container = av.open(str(self.path))
            self._stream = self._container.streams.video[0]
        except (av.FFmpegError, IndexError, OSError, UnicodeDecodeError) as err:
            raise GSFDataError(f"cannot open video {self.path}: {err}") from err
        if threads > 1:
            self._stream.thread_type = "AUTO"
            self._stream.thread_count = threads
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        if not rate:
            raise GSFDataError(f"video {self.path} has no frame rate")
        self.rate = Fraction(rate)
        self._time_base = self._stream.time_base
        self._start_pts = self._stream.start_time or 0

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    @property
    def num_frames(self) -> int:
        """Frame count from the container (exact for MP4, from the duration for WebM); 0 if unknown."""
        if self._stream.frames:
            return int(self._stream.frames)
        if self._stream.duration is not None:
            seconds = self._stream.duration * self._time_base
        elif self._container.duration is not None:
            seconds = Fraction(self._container.duration, av.time_base)
        else:
            return 0
        return int(round(seconds * self.rate))

    def _index_of(self, frame: av.VideoFrame) -> int:
        return int(round((frame.pts - self._start_pts) * self._time_base * self.rate))

    def _seek(self, index: int) -> None:
        target = self._start_pts + int(Fraction(index) / self.rate / self._time_base)
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)

    def count_frames(self) -> int:
        """Decode the whole stream and count its frames (used by validation); call on a fresh file."""
        try:
            return sum(1 for _ in self._container.decode(self._stream))
        except av.FFmpegError as err:
            raise GSFDataError(f"corrupt video {self.path}: {err}") from err

    def frames(self, indices) -> torch.Tensor:
        """Frames at 0-based ``indices`` (any order, repeats allowed) as uint8 ``(N, 3, H, W)``.

        Decodes forward from the start, seeking ahead only across gaps of more than
        ``SEEK_GAP_FRAMES``, and stops after the last frame needed.
        """
        wanted = sorted(set(int(i) for i in indices))
        if not wanted:
            raise GSFDataError("no frame indices requested")
        if wanted[0] < 0:
            raise GSFDataError(f"negative frame index {wanted[0]} requested from {self.path}")
        got: dict[int, np.ndarray] = {}
        last = -1
        pos = 0
        decoder = None
        try:
            while pos < len(wanted):
                target = wanted[pos]
                if decoder is None or target - last > SEEK_GAP_FRAMES:
                    if decoder is not None or target > SEEK_GAP_FRAMES:
                        self._seek(target)
                    decoder = self._container.decode(self._stream)
                for frame in decoder:
                    index = self._index_of(frame) if frame.pts is not None else last + 1
                    last = index
                    if index >= target:
                        # index > target only where the stream's timestamps skip a frame
                        array = frame.to_ndarray(format="rgb24")
                        while pos < len(wanted) and wanted[pos] <= index:
                            got[wanted[pos]] = array
                            pos += 1
                        break
                else:
                    break  # end of stream
        except av.FFmpegError as err:
            raise GSFDataError(f"corrupt video {self.path}: {err}") from err
        if not got and last < 0:
            raise GSFDataError(f"video {self.path} has no decodable frames")
        missing = [i for i in wanted if i not in got]
        if missing:
            if not got or missing[-1] - last > END_TOLERANCE_FRAMES:
                raise GSFDataError(
                    f"video {self.path} ends at frame {last}, frame {missing[-1]} was requested "
                    f"(too few frames)"
                )
            tail = got[max(got)]
            for i in missing:
                got[i] = tail
        stack = np.stack([got[int(i)] for i in indices])
        return torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous()


def read_jpeg_frames(folder: str | os.PathLike, template: str, numbers) -> torch.Tensor:
    """JPEG frames ``folder / template.format(n)`` for each ``n`` in ``numbers`` as uint8 ``(N, 3, H, W)``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GSFDataError(f"frame folder not found: {folder}")
    cache: dict[int, torch.Tensor] = {}
    for n in numbers:
        n = int(n)
        if n in cache:
            continue
        path = folder / template.format(n)
        try:
            data = read_file(str(path))
        except (RuntimeError, OSError) as err:
            raise GSFDataError(f"frame file not found or unreadable: {path}") from err
        try:
            cache[n] = decode_jpeg(data, mode=ImageReadMode.RGB)
        except RuntimeError as err:
            raise GSFDataError(f"corrupt JPEG frame {path}: {err}") from err
    shapes = {tuple(t.shape) for t in cache.values()}
    if len(shapes) > 1:
        raise GSFDataError(f"frames of {folder} differ in size: {sorted(shapes)}")
    return torch.stack([cache[int(n)] for n in numbers])


def count_frame_files(folder: str | os.PathLike, template: str) -> int:
    """Number of files in ``folder`` named like ``template`` (frames are then read as 1..count, so a
    missing frame in the middle fails loudly when it is read instead of shortening the sample)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GSFDataError(f"frame folder not found: {folder}")
    prefix, _, rest = template.partition("{")
    spec, _, suffix = rest.partition("}")
    width = spec.lstrip(":").rstrip("d").lstrip("0")
    digits = rf"\d{{{int(width)}}}" if width else r"\d+"
    pattern = re.compile(re.escape(prefix) + digits + re.escape(suffix) + "$")
    return sum(1 for name in os.listdir(folder) if pattern.match(name))
