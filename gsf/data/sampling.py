"""TSN segment sampling (GSF.md section 4).

Offsets are 0-based positions inside a sample of ``num_available`` frames; a reader adds the record's
``first_frame`` (1 for the frame folders of every release, so the frame files read are 1-based).
"""

from __future__ import annotations

import numpy as np

from gsf.errors import GSFConfigError, GSFDataError

SAMPLING_MODES = ("train", "val", "test")


def segment_offsets(
    num_available: int,
    num_segments: int,
    mode: str,
    *,
    num_clips: int = 1,
    dense_stride: int = 2,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Frame offsets of each clip, int64 ``(num_clips, num_segments)``.

    - ``"train"``: the frames are cut into ``num_segments`` segments of ``num_available // num_segments``
      frames and one random frame is taken in each (the release's formula; the remainder at the end is
      never sampled). With fewer frames than segments, frames repeat in order (the centre rule below),
      where the release would return frame 1 every time.
    - ``"val"`` and ``"test"`` with 1 clip: the centre of each of ``num_segments`` equal segments,
      ``int(tick / 2 + tick * i)`` with ``tick = num_available / num_segments``.
    - ``"test"`` with 2 clips: segment starts ``int(tick * i)``, then segment centres.
    - ``"test"`` with ``num_clips > 2`` (dense): ``num_segments`` consecutive frames ``dense_stride``
      apart, the clips' starts evenly spaced over the sample (clamped to the last frame when short).
    """
    if num_available < 1:
        raise GSFDataError(f"a sample needs at least 1 frame, got {num_available}")
    if num_segments < 1:
        raise GSFConfigError(f"num_segments must be >= 1, got {num_segments}")
    if mode not in SAMPLING_MODES:
        raise GSFConfigError(f"sampling mode must be one of {SAMPLING_MODES}, got {mode!r}")
    if num_clips < 1 or (mode != "test" and num_clips != 1):
        raise GSFConfigError(f"{mode!r} sampling takes 1 clip (test takes >= 1), got num_clips={num_clips}")
    segments = np.arange(num_segments)
    tick = num_available / num_segments
    centres = (tick / 2 + tick * segments).astype(np.int64)
    if mode == "train":
        length = num_available // num_segments
        if length == 0:
            return centres[None]
        rng = rng if rng is not None else np.random.default_rng()
        return (segments * length + rng.integers(0, length, size=num_segments))[None].astype(np.int64)
    if num_clips == 1:
        return centres[None]
    if num_clips == 2:
        starts = (tick * segments).astype(np.int64)
        return np.stack([starts, centres])
    window = (num_segments - 1) * dense_stride + 1
    last_start = max(num_available - window, 0)
    clip_starts = np.linspace(0, last_start, num_clips).round().astype(np.int64)
    offsets = clip_starts[:, None] + segments[None] * dense_stride
    return np.minimum(offsets, num_available - 1)
