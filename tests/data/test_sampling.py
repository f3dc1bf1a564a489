"""TSN segment sampling against the reference formulas (docs/recipe.md)."""

import itertools

import numpy as np
import pytest

from gsf.data.sampling import segment_offsets


@pytest.mark.parametrize("n,t", itertools.product((8, 16, 37, 100), (4, 8)))
def test_train_draws_one_frame_in_each_equal_segment(n, t):
    length = n // t
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(50):
        offsets = segment_offsets(n, t, "train", rng=rng)
        assert offsets.shape == (1, t)
        assert all(i * length <= o < (i + 1) * length for i, o in enumerate(offsets[0]))
        seen.add(tuple(offsets[0]))
    assert len(seen) > 1 or length == 1


@pytest.mark.parametrize("n,t", itertools.product((3, 8, 16, 37, 100), (4, 8)))
def test_val_takes_segment_centres(n, t):
    tick = n / t
    expected = [int(tick / 2 + tick * i) for i in range(t)]
    assert segment_offsets(n, t, "val").tolist() == [expected]
    assert segment_offsets(n, t, "test").tolist() == [expected]


@pytest.mark.parametrize("n,t", itertools.product((16, 37, 100), (4, 8)))
def test_two_clips_are_segment_starts_then_centres(n, t):
    tick = n / t
    starts = [int(tick * i) for i in range(t)]
    centres = [int(tick / 2 + tick * i) for i in range(t)]
    assert segment_offsets(n, t, "test", num_clips=2).tolist() == [starts, centres]


def test_short_samples_repeat_frames_in_order():
    offsets = segment_offsets(3, 8, "train", rng=np.random.default_rng(0))[0]
    assert offsets.min() >= 0 and offsets.max() <= 2 and np.all(np.diff(offsets) >= 0)


def test_ten_random_tsn_clips_one_frame_per_segment_repeatably():
    offsets = segment_offsets(100, 8, "test", num_clips=10)  # 8 segments of 12 frames
    assert offsets.shape == (10, 8)
    segment = offsets // 12
    assert np.all(segment == np.arange(8)) and len({tuple(row) for row in offsets.tolist()}) > 1
    assert np.array_equal(offsets, segment_offsets(100, 8, "test", num_clips=10))  # the same test twice
    drawn = np.concatenate([segment_offsets(100, 8, "test", num_clips=10, rng=np.random.default_rng(s))
                            for s in range(40)]) % 12
    assert set(drawn.ravel().tolist()) == set(range(12))  # every frame of a segment can be drawn


# TSM's dense sampling, worked out by hand: 8 frames 64 // 8 = 8 apart; starts spread over
# [0, num_frames - 64], truncated; wrapping around the end of a short sample.
def test_dense_clips_span_64_frame_windows():
    offsets = segment_offsets(100, 8, "test", num_clips=10, test_sampling="dense")
    starts = [0, 4, 8, 12, 16, 20, 24, 28, 32, 36]  # linspace(0, 36, 10)
    assert offsets.tolist() == [[s + 8 * i for i in range(8)] for s in starts]
    assert segment_offsets(30, 4, "test", num_clips=2, test_sampling="dense").tolist() == [[0, 16, 2, 18]] * 2
    assert segment_offsets(100, 8, "test", num_clips=1, test_sampling="dense").tolist() == [[18 + 8 * i for i in range(8)]]
    with pytest.raises(ValueError, match="test sampling"):
        segment_offsets(100, 8, "test", test_sampling="uniform")


def test_frame_folders_are_read_one_based(ssv1_root):
    """Video 100 of the fixture is the files 00001.jpg .. 00012.jpg, file k holding frame k - 1: offset o must
    read file o + 1 (a 0-based reader would ask for 00000.jpg and shift every frame back by one)."""
    from gsf.data import SomethingSomethingV1

    from .builders import frame_index_of

    ds = SomethingSomethingV1(ssv1_root, "train", num_frames=4, mode="val")
    index = next(i for i, r in enumerate(ds.records) if r.video_id == "100")
    assert ds.records[index].first_frame == 1
    assert frame_index_of(ds[index]["video"]) == [1, 4, 7, 10]  # centres of 4 segments of 3: files 2, 5, 8, 11
    every = SomethingSomethingV1(ssv1_root, "train", num_frames=12, mode="val")
    assert frame_index_of(every[index]["video"]) == list(range(12))  # files 00001.jpg .. 00012.jpg, each once


@pytest.mark.parametrize("bad", [dict(mode="bogus"), dict(mode="val", num_clips=2)])
def test_bad_sampling_arguments_are_rejected(bad):
    with pytest.raises(ValueError):
        segment_offsets(10, 4, **bad)


def test_data_sets_sample_test_clips_as_configured(ssv1_root):
    from gsf.data import build_dataset

    dense = build_dataset("ssv1", ssv1_root, "train", num_frames=4, mode="test", input_size=28, num_clips=2,
                          test_sampling="dense")
    assert dense.offsets(30).tolist() == segment_offsets(30, 4, "test", num_clips=2, test_sampling="dense").tolist()
    tsn = build_dataset("ssv1", ssv1_root, "train", num_frames=4, mode="test", input_size=28, num_clips=3)
    assert tsn.offsets(30).tolist() == segment_offsets(30, 4, "test", num_clips=3).tolist()
