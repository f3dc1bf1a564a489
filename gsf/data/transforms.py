"""Train augmentation and test views of the release (docs/recipe.md), on torchvision.transforms.v2
video tensors.

Every transform takes a uint8 clip ``(T, 3, H, W)`` and draws its random parameters once per clip, so all
frames of a clip get the same operation (a clip of identical frames stays identical).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from gsf.errors import GSFConfigError, GSFDataError
from gsf.vocabulary import RELEASE_CROP_SCALES

NORMALISATIONS = ("resnet", "inception")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_BGR_MEAN = (104.0, 117.0, 128.0)

# Words whose exchange describes the horizontally mirrored action. "left"/"right" is the
# Something-Something rule of the release; "clockwise"/"anticlockwise" never occurs in the SS label files
# and keeps the synthetic benchmark's rotation classes consistent under flips.
MIRROR_WORDS = (("left", "right"), ("clockwise", "anticlockwise"))


def mirror_label_swap(
    class_names: Sequence[str], mirror_words: Sequence[tuple[str, str]] = MIRROR_WORDS
) -> dict[int, int]:
    """Label swap for horizontal flips: ``{i: j}`` for every pair of classes whose names differ only by
    exchanging mirror words (``"... from left to right"`` <-> ``"... from right to left"``).

    Read from the label file, not hard-coded (on SSv1 the release swaps 86<->87, 93<->94, 166<->167).
    """
    index = {name: i for i, name in enumerate(class_names)}
    swap: dict[int, int] = {}
    for a, b in mirror_words:
        pattern = re.compile(rf"\b({re.escape(a)}|{re.escape(b)})\b", re.IGNORECASE)

        def exchange(match: re.Match, a: str = a, b: str = b) -> str:
            word = match.group(0)
            other = b if word.lower() == a else a
            return other.capitalize() if word[0].isupper() else other

        for name, i in index.items():
            mirrored = pattern.sub(exchange, name)
            j = index.get(mirrored)
            if j is not None and j != i:
                swap[i] = j
    return swap


class Normalize:
    """ResNet: RGB / 255 with ImageNet mean and std. Inception: BGR in 0-255 minus (104, 117, 128)."""

    def __init__(self, kind: str = "resnet") -> None:
        if kind not in NORMALISATIONS:
            raise GSFConfigError(f"normalisation must be one of {NORMALISATIONS}, got {kind!r}")
        self.kind = kind

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        x = clip.as_subclass(torch.Tensor).float()
        if self.kind == "resnet":
            mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1) * 255
            std = torch.tensor(IMAGENET_STD).view(3, 1, 1) * 255
            return (x - mean) / std
        bgr = x.flip(-3)
        return bgr - torch.tensor(INCEPTION_BGR_MEAN).view(3, 1, 1)


RANDAUGMENT_POLICY = "rand-m9-mstd0.5"  # timm's policy string of the release (docs/recipe.md)
# The release's hparams: translate_const 117 and the ImageNet mean as fill; no "interpolation", so each op
# draws bilinear or bicubic.
RANDAUGMENT_HPARAMS = {"translate_const": 117, "img_mean": (124, 116, 104)}


class ClipRandAugment:
    """The release's RandAugment (docs/recipe.md): timm's ``rand-m9-mstd0.5`` (2 ops, magnitude 9 with
    std 0.5, the plain ops, not the "Increasing" ones), fill (124, 116, 104), ``translate_const`` 117,
    bilinear or bicubic drawn per op, with one draw per clip: every frame of a clip gets the same ops,
    magnitudes, signs and interpolations.

    timm draws from Python's ``random`` and numpy's global generator; the state of both is taken before the
    clip and put back before each frame, so every frame replays the first frame's draws (and the clip
    leaves the generators where one image would).
    """

    def __init__(self, policy: str = RANDAUGMENT_POLICY, *, hparams: dict | None = None) -> None:
        from timm.data.auto_augment import rand_augment_transform

        self.policy = policy
        self.hparams = dict(RANDAUGMENT_HPARAMS if hparams is None else hparams)
        self.transform = rand_augment_transform(policy, dict(self.hparams))

    def __call__(self, clip: tv_tensors.Video) -> tv_tensors.Video:
        python_state, numpy_state = random.getstate(), np.random.get_state()
        frames = []
        for frame in clip.as_subclass(torch.Tensor):
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            image = Image.fromarray(frame.permute(1, 2, 0).contiguous().numpy())
            frames.append(torch.from_numpy(np.asarray(self.transform(image))).permute(2, 0, 1))
        return tv_tensors.wrap(torch.stack(frames).contiguous(), like=clip)


class MultiScaleCrop:
    """TSN multi-scale crop (docs/recipe.md): crop width and height each picked from
    ``scales * min(H, W)`` (sizes within 3 px of ``size`` snap to it), at most ``max_distortion`` scale
    steps apart, placed at one of the release's 13 fixed offsets (``more_fix_crop``: the four corners, the
    centre, the four edge midpoints and the four quarter points, in quarter steps of the free space), then
    resized to ``size x size``. ``more_fixed_crops=False`` keeps TSN's original 5 (corners and centre)."""

    def __init__(
        self,
        size: int,
        *,
        scales: Sequence[float] = RELEASE_CROP_SCALES,
        max_distortion: int = 1,
        more_fixed_crops: bool = True,
    ) -> None:
        self.size, self.scales, self.max_distortion = size, tuple(scales), max_distortion
        self.more_fixed_crops = more_fixed_crops

    def params(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(top, left, crop_height, crop_width)`` of one random crop."""
        base = min(height, width)
        sizes = [int(base * s) for s in self.scales]
        sizes = [self.size if abs(s - self.size) < 3 else s for s in sizes]
        pairs = [
            (h, w)
            for i, h in enumerate(sizes)
            for j, w in enumerate(sizes)
            if abs(i - j) <= self.max_distortion
        ]
        crop_h, crop_w = random.choice(pairs)
        crop_h, crop_w = min(crop_h, height), min(crop_w, width)
        h_step, w_step = (height - crop_h) // 4, (width - crop_w) // 4
        grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]  # (row, column) in quarter steps
        if self.more_fixed_crops:
            grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
        row, col = random.choice(grid)
        return row * h_step, col * w_step, crop_h, crop_w

    def __call__(self, clip: tv_tensors.Video) -> tv_tensors.Video:
        top, left, h, w = self.params(clip.shape[-2], clip.shape[-1])
        return F.resized_crop(clip, top, left, h, w, [self.size, self.size], antialias=True)


def _as_video(clip: torch.Tensor) -> tv_tensors.Video:
    if clip.dtype != torch.uint8 or clip.ndim != 4 or clip.shape[1] != 3:
        raise GSFDataError(f"expected a uint8 clip (T, 3, H, W), got {clip.dtype} {tuple(clip.shape)}")
    return clip if isinstance(clip, tv_tensors.Video) else tv_tensors.Video(clip)


class TrainAugmentation:
    """The release's train augmentation, in its order (docs/recipe.md): RandAugment, TSN multi-scale
    crop resized to ``size``, horizontal flip with probability ``flip_probability`` (swapping labels by
    ``label_swap``), normalisation.

    ``__call__(clip uint8 (T, 3, H, W), label) -> (float32 (T, 3, size, size), label)``.
    """

    def __init__(
        self,
        size: int,
        *,
        normalisation: str = "resnet",
        randaugment: ClipRandAugment | None = None,
        use_randaugment: bool = True,
        crop: MultiScaleCrop | None = None,
        flip_probability: float = 0.5,
        label_swap: dict[int, int] | None = None,
    ) -> None:
        self.size = size
        self.randaugment = (randaugment or ClipRandAugment()) if use_randaugment else None
        self.crop = crop or MultiScaleCrop(size)
        self.flip_probability = flip_probability
        self.label_swap = dict(label_swap or {})
        self.normalize = Normalize(normalisation)

    def __call__(self, clip: torch.Tensor, label):
        video = _as_video(clip)
        if self.randaugment is not None:
            video = self.randaugment(video)
        video = self.crop(video)
        if random.random() < self.flip_probability:
            video = F.horizontal_flip(video)
            if self.label_swap and not isinstance(label, tuple):
                label = self.label_swap.get(int(label), int(label))
        return self.normalize(video), label


TEST_CROP_COUNTS = (1, 3, 5, 10)
THREE_CROP_STYLES = ("release", "full_res")


def view_scale_size(input_size: int) -> int:
    """Shorter side of a test frame before cropping, as the release computes it (docs/recipe.md):
    ``input_size * 256 // 224`` (256 for 224, 261 for InceptionV3's 229)."""
    return input_size * 256 // 224


def view_crop_size(input_size: int, num_crops: int, three_crop: str = "release") -> int:
    """Side of the square crops a test view runs at: ``input_size``, except TSM's full-resolution 3 crops,
    which take the whole shorter side (:func:`view_scale_size`)."""
    return view_scale_size(input_size) if num_crops == 3 and three_crop == "full_res" else input_size


def view_crop_boxes(height: int, width: int, *, input_size: int, num_crops: int,
                    three_crop: str = "release") -> list[tuple[int, int, int, bool]]:
    """``(top, left, side, flipped)`` of each test crop of a frame already scaled to ``height x width``
    (docs/recipe.md). Offsets move in quarter steps of the free space, ``step = (free) // 4``, as the
    release's crops do:

    - 1: the centre crop (torchvision's rounding of half the free space);
    - 3, ``"release"`` (``GroupFullResSample(input, scale, flip=False)``): left, centre, right
      (horizontal offsets 0, 2 and 4 steps), vertically centred (2 steps), for portrait frames too;
    - 3, ``"full_res"`` (TSM): squares of the whole shorter side, at the start, centre and end of the
      longer side;
    - 5: the four corners and the centre; 10: those five and their horizontal flips.
    """
    if num_crops not in TEST_CROP_COUNTS:
        raise GSFConfigError(f"test crops must be one of {TEST_CROP_COUNTS}, got {num_crops}")
    if three_crop not in THREE_CROP_STYLES:
        raise GSFConfigError(f"three_crop must be one of {THREE_CROP_STYLES}, got {three_crop!r}")
    if num_crops == 3 and three_crop == "full_res":
        side = min(height, width)
        if width >= height:
            return [(0, 0, side, False), (0, (width - side) // 2, side, False), (0, width - side, side, False)]
        return [(0, 0, side, False), ((height - side) // 2, 0, side, False), (height - side, 0, side, False)]
    side = input_size
    if height < side or width < side:
        raise GSFDataError(f"a {height}x{width} frame is smaller than the {side} px test crop")
    if num_crops == 1:
        return [(int(round((height - side) / 2.0)), int(round((width - side) / 2.0)), side, False)]
    h_step, w_step = (height - side) // 4, (width - side) // 4
    if num_crops == 3:
        return [(2 * h_step, col * w_step, side, False) for col in (0, 2, 4)]
    corners_and_centre = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
    boxes = [(row * h_step, col * w_step, side, False) for row, col in corners_and_centre]
    if num_crops == 10:
        boxes += [(top, left, side, True) for top, left, side, _ in boxes]
    return boxes


class TestViews:
    """Test views (docs/recipe.md): the shorter side resized to :func:`view_scale_size`, then the crops of
    :func:`view_crop_boxes` (1 centre crop; 3 release or full-resolution crops; 5; 10 with flips).

    ``__call__(clip uint8 (T, 3, H, W), label) -> (float32 (crops, T, 3, s, s), label)`` with s of
    :func:`view_crop_size`.
    """

    __test__ = False  # not a pytest class

    def __init__(self, size: int, *, num_crops: int = 1, normalisation: str = "resnet",
                 three_crop: str = "release") -> None:
        view_crop_boxes(size, size, input_size=size, num_crops=num_crops, three_crop=three_crop)  # checks
        self.size, self.num_crops, self.three_crop = size, num_crops, three_crop
        self.scale_size = view_scale_size(size)
        self.normalize = Normalize(normalisation)

    def __call__(self, clip: torch.Tensor, label):
        video = F.resize(_as_video(clip), [self.scale_size], antialias=True)
        boxes = view_crop_boxes(video.shape[-2], video.shape[-1], input_size=self.size, num_crops=self.num_crops,
                                three_crop=self.three_crop)
        views = []
        for top, left, side, flipped in boxes:
            view = F.crop(video, top, left, side, side)
            views.append(self.normalize(F.horizontal_flip(view) if flipped else view))
        return torch.stack(views), label
