"""The horizontal flip's label swap inside the training data set the trainer builds (docs/recipe.md): a
flipped clip of "from left to right" is labelled "from right to left" (and clockwise/anticlockwise), while a
flipped "up" stays "up"."""

from __future__ import annotations

import random

import pytest
import torch

from gsf.data import synthesize_dataset
from gsf.engine.config import load_config
from gsf.engine.loaders import build_split

SIZE, FRAMES = 32, 8


@pytest.fixture(scope="module")
def six_classes(tmp_path_factory):
    """One training video per class of the synthetic set's first three pairs: left/right, up/down and
    clockwise/anticlockwise."""
    root = tmp_path_factory.mktemp("six")
    synthesize_dataset(root, num_classes=6, videos_per_class=2, num_frames=FRAMES, size=SIZE, seed=4, val_fraction=0.25)
    return root


def config(root, *overrides):
    # whole frames (crop scale 1 of a 32 px frame at 32 px) and T = the video's frames: nothing random but the flip
    return load_config(None, [
        "model.backbone=resnet_tiny", "model.pretrained=none", "data.dataset=ssv2", f"data.root={root}",
        f"data.num_frames={FRAMES}", f"data.input_size={SIZE}", "data.randaugment=false",
        "data.train_crop_scales=[1.0]", "runtime.device=cpu", *overrides])


MIRRORED = {"Moving something from left to right": "Moving something from right to left",
            "Moving something from right to left": "Moving something from left to right",
            "Turning something clockwise": "Turning something anticlockwise",
            "Turning something anticlockwise": "Turning something clockwise"}


def test_a_flipped_training_clip_carries_the_mirrored_label(six_classes):
    dataset = build_split(config(six_classes), "train", train=True)
    names = list(dataset.class_names)
    assert len(dataset) == 6 and sorted(r.label for r in dataset.records) == list(range(6))
    random.seed(0)
    for index, record in enumerate(dataset.records):
        frames = dataset.load_frames(record)[0]  # uint8 (T, 3, H, W), the same frames every time
        assert frames.shape == (FRAMES, 3, SIZE, SIZE)
        plain = dataset.transform.normalize(frames)
        mirrored = dataset.transform.normalize(torch.flip(frames, dims=[-1]))
        assert not torch.equal(plain, mirrored)
        name = names[record.label]
        seen = set()
        for _ in range(12):
            item = dataset[index]
            flipped = torch.equal(item["video"], mirrored)
            assert flipped or torch.equal(item["video"], plain)
            expected = MIRRORED.get(name, name) if flipped else name
            assert names[int(item["label"])] == expected, (name, flipped)
            seen.add(flipped)
        assert seen == {True, False}  # both cases drawn (probability 0.5 each)

