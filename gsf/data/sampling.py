"""TSN segment sampling and the release's test clip modes (docs/recipe.md).

Offsets are 0-based positions inside a sample of ``num_available`` frames; a reader adds the record's
``first_frame`` (1 for the frame folders of every release, so the frame files read are 1-based).
"""

from __future__ import annotations

import numpy as np

from gsf.errors import GSFConfigError, GSFDataError

SAMPLING_MODES = ("train", "val", "test")
TEST_SAMPLINGS = ("tsn", "dense")
DENSE_WINDOW = 64  # frames a dense clip spans (TSM's dense sampling, which the GSF release inherits)


def _random_tsn_clip(num_available: int, segments: np.ndarray, centres: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    length = num_available // len(segments)
    if length == 0:
        return centres
    return (segments * length + rng.integers(0, length, size=len(segments))).astype(np.int64)


def segment_offsets(
    num_available: int,
    num_segments: int,
    mode: str,
    *,
    num_clips: int = 1,
    test_sampling: str = "tsn",
    dense_stride: int | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Frame offsets of each clip, int64 ``(num_clips, num_segments)``.

    - ``"train"``: the frames are cut into ``num_segments`` segments of ``num_available // num_segments``
      frames and one random frame is taken in each (the release's formula; the remainder at the end is
      never sampled). With fewer frames than segments, frames repeat in order (the centre rule below),
      where the release would return frame 1 every time.
    - ``"val"``, and ``"test"`` with 1 clip: the centre of each of ``num_segments`` equal segments,
      ``int(tick / 2 + tick * i)`` with ``tick = num_available / num_segments``.
    - ``"test"``, ``test_sampling="tsn"`` (the release's default): 2 clips are the segment starts
      ``int(tick * i)`` then the centres; more clips are that many random TSN clips (the train rule, drawn
      from ``rng``, by default a generator seeded from the sample's length, so a test is repeatable).
    - ``"test"``, ``test_sampling="dense"`` (TSM's dense sampling): each clip takes ``num_segments`` frames
      ``dense_stride`` apart (default ``64 // num_segments``, so a clip spans a 64-frame window), wrapping
      around the sample's end; the clips' starts are ``num_clips`` points evenly spaced (truncated to
      integers) from 0 to ``max(0, num_available - 64)``; one dense clip starts at the middle of that range.
    """
    if num_available < 1:
        raise GSFDataError(f"a sample needs at least 1 frame, got {num_available}")
    if num_segments < 1:
        raise GSFConfigError(f"num_segments must be >= 1, got {num_segments}")
    if mode not in SAMPLING_MODES:
        raise GSFConfigError(f"sampling mode must be one of {SAMPLING_MODES}, got {mode!r}")
    if test_sampling not in TEST_SAMPLINGS:
        raise GSFConfigError(f"test sampling must be one of {TEST_SAMPLINGS}, got {test_sampling!r}")
    if num_clips < 1 or (mode != "test" and num_clips != 1):
        raise GSFConfigError(f"{mode!r} sampling takes 1 clip (test takes >= 1), got num_clips={num_clips}")
    segments = np.arange(num_segments)
    tick = num_available / num_segments
    centres = (tick / 2 + tick * segments).astype(np.int64)
    if mode == "train":
        rng = rng if rng is not None else np.random.default_rng()
        return _random_tsn_clip(num_available, segments, centres, rng)[None]
    if mode == "val" or test_sampling == "tsn":
        if num_clips == 1:
            return centres[None]
        if num_clips == 2:
            return np.stack([(tick * segments).astype(np.int64), centres])
        rng = rng if rng is not None else np.random.default_rng([num_available, num_segments, num_clips])
        return np.stack([_random_tsn_clip(num_available, segments, centres, rng) for _ in range(num_clips)])
    stride = dense_stride if dense_stride is not None else max(1, DENSE_WINDOW // num_segments)
    last_start = max(0, num_available - DENSE_WINDOW)
    starts = np.array([last_start // 2]) if num_clips == 1 else np.linspace(0, last_start, num_clips).astype(np.int64)
    return ((starts[:, None] + segments[None] * stride) % num_available).astype(np.int64)
