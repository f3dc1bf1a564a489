"""Train augmentation and test views (GSF.md section 4) act on whole clips identically."""

import random

import pytest
import torch

from gsf.data import SomethingSomethingV1
from gsf.data.transforms import (
    IMAGENET_MEAN,
    ClipRandAugment,
    MultiScaleCrop,
    Normalize,
    TestViews,
    TrainAugmentation,
    mirror_label_swap,
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


@pytest.mark.parametrize("seed", range(12))
def test_train_augmentation_is_identical_on_every_frame(seed):
    random.seed(seed)
    torch.manual_seed(seed)
    aug = TrainAugmentation(24, randaugment=ClipRandAugment(probability=1.0))
    out, _ = aug(_clip(seed=seed), 0)
    assert out.shape == (4, 3, 24, 24) and out.dtype == torch.float32
    assert all(torch.equal(out[0], out[i]) for i in range(1, 4))


@pytest.mark.parametrize("op", sorted(__import__("gsf.data.transforms", fromlist=["x"]).RANDAUGMENT_OPS))
def test_every_randaugment_op_keeps_frames_identical(op):
    out = ClipRandAugment(num_ops=1, probability=1.0, ops=(op,))(_clip())
    assert out.dtype == torch.uint8 and out.shape == (4, 3, 48, 64)
    assert all(torch.equal(out[0], out[i]) for i in range(1, 4))


def test_multiscale_crop_picks_tsn_sizes_and_fixed_positions():
    random.seed(0)
    crop = MultiScaleCrop(32)
    for _ in range(100):
        top, left, h, w = crop.params(48, 64)
        sizes = {48, 42, 36, 32}  # 48 * .66 = 31 snaps to the input size 32
        assert h in sizes and w in sizes
        assert top in {0, (48 - h) // 4 * 2, (48 - h) // 4 * 4}
        assert left in {0, (64 - w) // 4 * 2, (64 - w) // 4 * 4}


def test_test_views_centre_crop_and_three_full_height_crops():
    clip = _clip(h=56, w=84)
    one, _ = TestViews(28, num_crops=1)(clip, 0)
    assert one.shape == (1, 4, 3, 28, 28)
    three, _ = TestViews(28, num_crops=3)(clip, 0)
    assert three.shape == (3, 4, 3, 32, 32)  # shorter side 28 * 256 / 224 = 32, full height


def test_normalisations():
    white = torch.full((1, 3, 2, 2), 255, dtype=torch.uint8)
    resnet = Normalize("resnet")(white)
    assert torch.allclose(resnet[0, :, 0, 0], (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor((0.229, 0.224, 0.225)))
    rgb = torch.tensor([10, 20, 30], dtype=torch.uint8).view(1, 3, 1, 1)
    assert Normalize("inception")(rgb).flatten().tolist() == [30 - 104, 20 - 117, 10 - 128]
