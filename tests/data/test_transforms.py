"""Train augmentation and test views (docs/recipe.md) act on whole clips identically."""

import random

import numpy as np
import pytest
import torch
from torchvision.transforms.v2 import functional as F

from gsf.data import SomethingSomethingV1
from gsf.data.transforms import (
    IMAGENET_MEAN,
    ClipRandAugment,
    MultiScaleCrop,
    Normalize,
    TestViews,
    TrainAugmentation,
    mirror_label_swap,
    view_crop_boxes,
    view_crop_size,
    view_scale_size,
)


def _clip(t=4, h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    frame = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
    return frame.expand(t, 3, h, w).clone()


def test_label_swap_is_read_from_the_label_file(ssv1_root):
    names = SomethingSomethingV1(ssv1_root, "train").class_names
    swap = mirror_label_swap(names)
    pairs = {(names[a], names[b]) for a, b in swap.items()}
    assert ("Pushing something from left to right", "Pushing something from right to left") in pairs
    assert ("Turning the camera right while filming something", "Turning the camera left while filming something") in pairs
    assert len(swap) == 4 and all(swap[swap[a]] == a for a in swap)


def test_flip_swaps_the_label_with_the_image():
    aug = TrainAugmentation(
        48, use_randaugment=False, crop=MultiScaleCrop(48, scales=(1.0,)), flip_probability=1.0,
        label_swap={3: 4, 4: 3},
    )
    clip = _clip(h=48, w=48)
    out, label = aug(clip, 3)
    assert label == 4
    reference = Normalize()(torch.flip(clip, dims=[-1]))
    assert torch.allclose(out, reference, atol=1e-4)
    assert aug(clip, 2)[1] == 2


@pytest.mark.parametrize("seed", range(6))
def test_train_augmentation_is_identical_on_every_frame(seed):
    random.seed(seed)
    np.random.seed(seed)
    out, _ = TrainAugmentation(24)(_clip(seed=seed), 0)
    assert out.shape == (4, 3, 24, 24) and out.dtype == torch.float32
    assert all(torch.equal(out[0], out[i]) for i in range(1, 4))


def test_randaugment_is_timms_release_policy():
    """docs/recipe.md: rand-m9-mstd0.5, 2 plain (not "Increasing") ops, fill (124, 116, 104),
    translate_const 117, bilinear or bicubic drawn per op."""
    from PIL import Image

    transform = ClipRandAugment().transform
    assert transform.num_layers == 2 and len(transform.ops) == 15
    names = {op.name for op in transform.ops}
    assert "Posterize" in names and "SolarizeIncreasing" not in names and "ColorIncreasing" not in names
    for op in transform.ops:
        assert op.magnitude == 9 and op.magnitude_std == 0.5 and op.prob == 0.5
        assert op.hparams["translate_const"] == 117 and op.kwargs["fillcolor"] == (124, 116, 104)
        assert set(op.kwargs["resample"]) == {Image.BILINEAR, Image.BICUBIC}


def _record_ops(augment: ClipRandAugment) -> list:
    """Wrap every op of ``augment`` so each application records (op, level arguments, resampling)."""
    calls = []
    for op in augment.transform.ops:
        def recording(img, *args, _op=op, _fn=op.aug_fn, **kwargs):
            resample = kwargs.get("resample")
            calls.append((_op.name, tuple(round(float(a), 9) for a in args), resample))
            return _fn(img, *args, **kwargs)
        op.aug_fn = recording
    return calls


@pytest.mark.parametrize("seed", range(8))
def test_every_frame_of_a_clip_gets_the_same_ops(seed):
    """Different frames, one draw per clip: each frame sees the same ops, magnitudes and interpolation."""
    augment = ClipRandAugment()
    calls = _record_ops(augment)
    generator = torch.Generator().manual_seed(seed)
    clip = torch.randint(0, 256, (5, 3, 20, 24), generator=generator, dtype=torch.uint8)
    random.seed(seed)
    np.random.seed(seed)
    out = augment(clip)
    assert out.dtype == torch.uint8 and out.shape == clip.shape
    assert len(calls) % 5 == 0
    per_frame = len(calls) // 5
    assert all(calls[i * per_frame:(i + 1) * per_frame] == calls[:per_frame] for i in range(5))


def test_single_images_follow_timms_distribution():
    """One-frame clips are exactly timm's transform of the image, draw for draw."""
    from PIL import Image
    from timm.data.auto_augment import rand_augment_transform

    ours = ClipRandAugment()
    timm_transform = rand_augment_transform("rand-m9-mstd0.5", {"translate_const": 117, "img_mean": (124, 116, 104)})
    generator = torch.Generator().manual_seed(0)
    for seed in range(30):
        frame = torch.randint(0, 256, (1, 3, 16, 16), generator=generator, dtype=torch.uint8)
        random.seed(seed)
        np.random.seed(seed)
        got = ours(frame)
        after_ours = (random.random(), np.random.random())
        random.seed(seed)
        np.random.seed(seed)
        expected = np.asarray(timm_transform(Image.fromarray(frame[0].permute(1, 2, 0).numpy())))
        assert np.array_equal(got[0].permute(1, 2, 0).numpy(), expected), seed
        assert after_ours == (random.random(), np.random.random())  # the generators advanced as timm's do


def test_multiscale_crop_picks_tsn_sizes_and_the_releases_13_offsets():
    random.seed(0)
    crop = MultiScaleCrop(32)
    positions = set()
    for _ in range(600):
        top, left, h, w = crop.params(48, 64)
        sizes = {48, 42, 36, 32}  # 48 * .66 = 31 snaps to the input size 32
        assert h in sizes and w in sizes
        h_step, w_step = (48 - h) // 4, (64 - w) // 4
        if h_step and w_step:
            assert top % h_step == 0 and left % w_step == 0
            positions.add((top // h_step, left // w_step))
    # corners, centre, edge midpoints, quarter points (docs/recipe.md, more_fix_crop), in quarter steps
    thirteen = {(0, 0), (0, 4), (4, 0), (4, 4), (2, 2), (2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)}
    assert positions == thirteen
    five = MultiScaleCrop(32, more_fixed_crops=False)
    for _ in range(100):
        top, left, h, w = five.params(48, 64)
        assert top in {0, (48 - h) // 4 * 2, (48 - h) // 4 * 4} and left in {0, (64 - w) // 4 * 2, (64 - w) // 4 * 4}


def test_view_scale_is_integer_division():
    assert [view_scale_size(n) for n in (224, 229, 32)] == [256, 261, 36]  # 261, not round()'s 262


# Expected crops worked out by hand from docs/recipe.md: frames scaled to a 256 px shorter side
# (landscape 240x320 -> 256x341, portrait 320x240 -> 341x256), 224 px crops, offsets in quarter steps of the
# free space (free 117 -> step 29, free 32 -> step 8): 3 crops at 0, 2 and 4 steps across, 2 steps down.
@pytest.mark.parametrize("height, width, centre, three, five", [
    (256, 341, (16, 58), [(16, 0), (16, 58), (16, 116)],
     [(0, 0), (0, 116), (32, 0), (32, 116), (16, 58)]),
    (341, 256, (58, 16), [(58, 0), (58, 16), (58, 32)],
     [(0, 0), (0, 32), (116, 0), (116, 32), (58, 16)]),
])
def test_crop_offsets_are_the_releases(height, width, centre, three, five):
    def boxes(n, style="release"):
        return view_crop_boxes(height, width, input_size=224, num_crops=n, three_crop=style)

    assert boxes(1) == [(*centre, 224, False)]
    assert boxes(3) == [(top, left, 224, False) for top, left in three]
    assert boxes(5) == [(top, left, 224, False) for top, left in five]
    assert boxes(10) == [(t, l, 224, False) for t, l in five] + [(t, l, 224, True) for t, l in five]
    full = boxes(3, "full_res")  # TSM's protocol: squares of the whole shorter side along the longer one
    expected_full = [(0, 0), (0, 42), (0, 85)] if width > height else [(0, 0), (42, 0), (85, 0)]
    assert full == [(top, left, 256, False) for top, left in expected_full]
    assert view_crop_size(224, 3, "full_res") == 256 and view_crop_size(224, 3) == view_crop_size(224, 10) == 224


@pytest.mark.parametrize("h, w", [(56, 84), (84, 56)])
def test_test_views_cut_those_crops_from_the_scaled_clip(h, w):
    """Input 28: shorter side 32 (landscape 56x84 -> 32x48, free 20 -> step 5; free 4 -> step 1)."""
    clip = _clip(t=2, h=h, w=w)
    scaled = F.resize(clip, [32], antialias=True)
    assert tuple(scaled.shape[-2:]) == ((32, 48) if w > h else (48, 32))
    normalise = Normalize("resnet")
    offsets = [(2, 0), (2, 10), (2, 20)] if w > h else [(10, 0), (10, 2), (10, 4)]
    three, label = TestViews(28, num_crops=3)(clip, 7)
    assert label == 7 and three.shape == (3, 2, 3, 28, 28)
    for view, (top, left) in zip(three, offsets):
        torch.testing.assert_close(view, normalise(scaled[..., top:top + 28, left:left + 28]))
    one, _ = TestViews(28, num_crops=1)(clip, 0)
    torch.testing.assert_close(one[0], normalise(F.center_crop(scaled, [28, 28])))
    ten, _ = TestViews(28, num_crops=10)(clip, 0)
    assert ten.shape == (10, 2, 3, 28, 28)
    torch.testing.assert_close(ten[5:], ten[:5].flip(-1))
    full, _ = TestViews(28, num_crops=3, three_crop="full_res")(clip, 0)
    assert full.shape == (3, 2, 3, 32, 32)
    with pytest.raises(ValueError, match="test crops"):
        TestViews(28, num_crops=4)


def test_normalisations():
    white = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    resnet = Normalize("resnet")(white)
    assert torch.allclose(resnet[0, :, 0, 0], (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor((0.229, 0.224, 0.225)))
    rgb = torch.tensor([10, 20, 30], dtype=torch.uint8).view(1, 3, 1, 1)
    assert Normalize("inception")(rgb).flatten().tolist() == [30 - 104, 20 - 117, 10 - 128]


def test_crop_scales_reach_the_train_crop_and_whole_scale_keeps_the_whole_frame(tmp_path):
    from gsf.data import build_dataset, synthesize_dataset
    from gsf.engine.config import TrainConfig, check_config
    from gsf.errors import GSFConfigError
    from gsf.vocabulary import RELEASE_CROP_SCALES

    synthesize_dataset(tmp_path, num_classes=2, videos_per_class=2, num_frames=4, size=32, seed=0, val_fraction=0.5)
    release = build_dataset("ssv2", tmp_path, "train", num_frames=2, mode="train", input_size=24, randaugment=False)
    assert release.transform.crop.scales == RELEASE_CROP_SCALES
    whole = build_dataset("ssv2", tmp_path, "train", num_frames=2, mode="train", input_size=32, randaugment=False,
                          crop_scales=(1.0,))
    random.seed(0)
    assert all(whole.transform.crop.params(32, 48)[2:] == (32, 32) for _ in range(20))  # the shorter side, always
    with pytest.raises(GSFConfigError, match="data.train_crop_scales"):
        check_config(TrainConfig.from_dict({"data": {"train_crop_scales": [1.2]}}), need_data=False)
