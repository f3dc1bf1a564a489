"""Data sets over :class:`VideoRecord`s: TSN sampling, decoding, transforms, loud failures.

An item is ``{"video": float32 (T, 3, H, W) (train, val) or (V, T, 3, H, W) (test, V = clips x crops,
clip-major), "label": int64 () or (2,) for EPIC verb/noun, "index": int, "video_id": str}``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from gsf.data import readers
from gsf.data.io import VideoFile, count_frame_files, read_jpeg_frames
from gsf.data.records import FRAMES, VideoRecord
from gsf.data.sampling import SAMPLING_MODES, segment_offsets
from gsf.data.transforms import MultiScaleCrop, TestViews, TrainAugmentation, mirror_label_swap
from gsf.errors import GSFConfigError, GSFDataError
from gsf.vocabulary import RELEASE_CROP_SCALES

log = logging.getLogger(__name__)

Transform = Callable[[torch.Tensor, object], tuple[torch.Tensor, object]]


class VideoDataset(Dataset):
    """Clips of ``num_frames`` frames sampled TSN-style (docs/recipe.md) from ``records``.

    Args:
        records: the samples.
        class_names: names by label index (for EPIC, ``(verbs, nouns)``).
        num_frames: T, frames per clip (number of TSN segments).
        mode: ``"train"`` (random frame per segment), ``"val"`` (segment centres, one clip) or ``"test"``
            (``num_clips`` clips: 1 centres, 2 starts + centres, more: random TSN clips; or dense clips
            with ``test_sampling="dense"``, :func:`gsf.data.sampling.segment_offsets`).
        num_clips: clips per sample in test mode.
        transform: ``(uint8 clip (T, 3, H, W), label) -> (float clip, label)``, e.g.
            :class:`TrainAugmentation` or :class:`TestViews`; ``None`` returns the frames as float32 0-255.
        skip_bad_samples: off by default: a missing or corrupt sample raises :class:`GSFDataError` naming it.
            On, the item becomes a skip marker that :func:`collate_clips` drops and reports; every skip is
            counted in ``skipped`` (this process only: with loader workers, count the batches' ``"skipped"``).
        test_sampling: ``"tsn"`` or ``"dense"`` test clips (:data:`gsf.data.sampling.TEST_SAMPLINGS`).
        dense_stride: frame stride of dense test clips (None: 64 // num_frames, TSM's).
        video_threads: decoder threads per video.
        cache_decoded: keep every frame of a sample, decoded to uint8, in this process's memory after its
            first read, and sample later epochs' clips from there (the same frames, no decoding). Meant for
            small data sets such as the synthetic benchmark (16 frames of 64 px: 0.2 MB a video); with loader
            workers each worker holds its own copy, which lasts one epoch unless the workers persist.
        decoded_cache: the mapping that cache lives in; give several data sets of the same videos the same
            one (validation and test views) and each video is decoded once. Default: a new one.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        *,
        class_names: Sequence = (),
        num_frames: int = 8,
        mode: str = "train",
        num_clips: int = 1,
        transform: Transform | None = None,
        skip_bad_samples: bool = False,
        test_sampling: str = "tsn",
        dense_stride: int | None = None,
        video_threads: int = 1,
        cache_decoded: bool = False,
        decoded_cache: dict | None = None,
    ) -> None:
        if mode not in SAMPLING_MODES:
            raise GSFConfigError(f"mode must be one of {SAMPLING_MODES}, got {mode!r}")
        if num_frames < 1:
            raise GSFConfigError(f"num_frames must be >= 1, got {num_frames}")
        if mode != "test" and num_clips != 1:
            raise GSFConfigError(f"num_clips={num_clips} needs mode='test' ({mode!r} takes one clip)")
        self.records = list(records)
        self.class_names = class_names
        self.num_frames, self.mode, self.num_clips = num_frames, mode, num_clips
        self.transform = transform
        self.skip_bad_samples = skip_bad_samples
        self.test_sampling, self.dense_stride, self.video_threads = test_sampling, dense_stride, video_threads
        self.skipped: list[tuple[int, str, str]] = []  # (index, video_id, reason)
        self.cache_decoded = cache_decoded
        # every frame of a record, uint8 (N, 3, H, W); a mapping given by the caller is shared with its other
        # data sets of the same videos (the trainer's validation and test views)
        self._decoded: dict[VideoRecord, torch.Tensor] = {} if decoded_cache is None else decoded_cache

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def offsets(self, num_available: int) -> np.ndarray:
        rng = np.random.default_rng(random.getrandbits(64)) if self.mode == "train" else None
        return segment_offsets(
            num_available, self.num_frames, self.mode, num_clips=self.num_clips,
            test_sampling=self.test_sampling, dense_stride=self.dense_stride, rng=rng,
        )

    def load_frames(self, record: VideoRecord) -> torch.Tensor:
        """The sampled frames of ``record``, uint8 ``(clips, T, 3, H, W)``."""
        if self.cache_decoded:
            every = self._decoded.get(record)
            if every is None:
                every = self._decoded[record] = self._read(record, None)
            numbers = self.offsets(len(every))
            return every[numbers.ravel()].reshape(*numbers.shape, *every.shape[1:])
        return self._read(record, self.offsets)

    def _read(self, record: VideoRecord, offsets) -> torch.Tensor:
        """Frames of ``record`` at ``offsets(available)`` as uint8 ``(*offsets.shape, 3, H, W)``, or every
        frame ``(available, 3, H, W)`` when ``offsets`` is None."""

        def numbers_of(available: int) -> np.ndarray:
            return record.first_frame + (np.arange(available) if offsets is None else offsets(available))

        if record.kind == FRAMES:
            available = record.num_frames
            if available is None:
                available = count_frame_files(record.path, record.frame_template) - (record.first_frame - 1)
            if available < 1:
                raise GSFDataError(f"no frames in {record.path} (template {record.frame_template})")
            numbers = numbers_of(available)
            frames = read_jpeg_frames(record.path, record.frame_template, numbers.ravel())
        else:
            with VideoFile(record.path, threads=self.video_threads) as video:
                available = record.num_frames
                if available is None:
                    available = video.num_frames - record.first_frame
                if available < 1:
                    raise GSFDataError(f"video {record.path} reports no frames")
                numbers = numbers_of(available)
                frames = video.frames(numbers.ravel())
        return frames.reshape(*numbers.shape, *frames.shape[1:])

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        try:
            clips = self.load_frames(record)
        except GSFDataError as err:
            message = f"sample {index} ({record.video_id}, annotation {record.source}): {err}"
            if not self.skip_bad_samples:
                raise GSFDataError(message) from err
            self.skipped.append((index, record.video_id, str(err)))
            log.warning("skipping bad sample (%d skipped so far): %s", len(self.skipped), message)
            return {"skipped": True, "index": index, "video_id": record.video_id, "error": message}
        label = record.label
        views = []
        for clip in clips:
            if self.transform is None:
                out = clip.float()
            else:
                out, label = self.transform(clip, record.label)
            views.append(out if out.ndim == 5 else out.unsqueeze(0))
        video = torch.cat(views)
        if self.mode != "test":
            if video.shape[0] != 1:
                raise GSFConfigError(f"{self.mode!r} mode needs a one-view transform, got {video.shape[0]} views")
            video = video[0]
        return {
            "video": video.float(),
            "label": torch.tensor(label, dtype=torch.int64),
            "index": index,
            "video_id": record.video_id,
        }


def collate_clips(batch: list[dict]) -> dict:
    """Stack items into a batch; skip markers are dropped and their video ids listed under ``"skipped"``
    (so the engine can count skips across loader workers)."""
    kept = [b for b in batch if not b.get("skipped")]
    out = {
        "skipped": [b["video_id"] for b in batch if b.get("skipped")],
        "index": torch.tensor([b["index"] for b in kept], dtype=torch.int64),
        "video_id": [b["video_id"] for b in kept],
    }
    if kept:
        out["video"] = torch.stack([b["video"] for b in kept])
        out["label"] = torch.stack([b["label"] for b in kept])
    return out


class _ReleaseDataset(VideoDataset):
    reader: Callable = None

    def __init__(self, root, split: str = "train", **kwargs) -> None:
        records, classes = type(self).reader(root, split)
        if not records:
            raise GSFDataError(f"{type(self).__name__}: no samples in split {split!r} under {root}")
        self.root, self.split = Path(root), split
        super().__init__(records, class_names=classes, **kwargs)


class SomethingSomethingV1(_ReleaseDataset):
    """Something-Something V1 from its release root (JPEG frame folders, ``;`` CSVs)."""

    reader = staticmethod(readers.read_ssv1)


class SomethingSomethingV2(_ReleaseDataset):
    """Something-Something V2 from its release root (``.webm`` videos, JSON annotations)."""

    reader = staticmethod(readers.read_ssv2)


class Diving48(_ReleaseDataset):
    """Diving48 (V2 labels) from its release root (``rgb/*.mp4``, JSON with start/end frames)."""

    reader = staticmethod(readers.read_diving48)


class Kinetics400(_ReleaseDataset):
    """Kinetics-400 from its release root (CSV + videos, flat or in class folders)."""

    reader = staticmethod(readers.read_kinetics400)


class EpicKitchens100(VideoDataset):
    """EPIC-Kitchens-100 from its release root; labels are (verb, noun), ``class_names`` is
    ``(verbs, nouns)``; ``media`` picks frame folders or videos (``"auto"``: frames where present)."""

    def __init__(self, root, split: str = "train", *, media: str = "auto", **kwargs) -> None:
        records, classes = readers.read_epic100(root, split, media=media)
        if not records:
            raise GSFDataError(f"EpicKitchens100: no samples in split {split!r} under {root}")
        self.root, self.split = Path(root), split
        super().__init__(records, class_names=classes, **kwargs)


class TSNList(VideoDataset):
    """Frame folders listed in a TSN list file (``<frame dir> <num frames> <label>``)."""

    def __init__(self, list_file, root=None, *, frame_template=None, num_classes=None, **kwargs) -> None:
        records, classes = readers.read_tsn_list(
            list_file, root, frame_template=frame_template, num_classes=num_classes
        )
        if not records:
            raise GSFDataError(f"TSNList: no samples in {list_file}")
        super().__init__(records, class_names=classes, **kwargs)


DATASETS = {
    "ssv1": SomethingSomethingV1,
    "ssv2": SomethingSomethingV2,
    "diving48": Diving48,
    "kinetics400": Kinetics400,
    "epic100": EpicKitchens100,
    "list": TSNList,
}


def make_transform(
    mode: str,
    input_size: int,
    *,
    class_names: Sequence = (),
    num_crops: int = 1,
    normalisation: str = "resnet",
    flip: bool = True,
    randaugment: bool = True,
    three_crop: str = "release",
    crop_scales: Sequence[float] = RELEASE_CROP_SCALES,
) -> Transform:
    """The release's transform for ``mode``: train augmentation (multi-scale crops of ``crop_scales``, the
    flip label swap read from ``class_names``), or test views (val: 1 centre crop)."""
    if mode == "train":
        names = class_names if class_names and isinstance(class_names[0], str) else ()
        return TrainAugmentation(
            input_size,
            normalisation=normalisation,
            use_randaugment=randaugment,
            crop=MultiScaleCrop(input_size, scales=crop_scales),
            flip_probability=0.5 if flip else 0.0,
            label_swap=mirror_label_swap(names),
        )
    return TestViews(input_size, num_crops=num_crops if mode == "test" else 1, normalisation=normalisation,
                     three_crop=three_crop)


def build_dataset(
    name: str,
    root,
    split: str,
    *,
    num_frames: int,
    mode: str,
    input_size: int,
    num_clips: int = 1,
    num_crops: int = 1,
    normalisation: str = "resnet",
    flip: bool = True,
    randaugment: bool = True,
    skip_bad_samples: bool = False,
    cache_decoded: bool = False,
    decoded_cache: dict | None = None,
    three_crop: str = "release",
    test_sampling: str = "tsn",
    crop_scales: Sequence[float] = RELEASE_CROP_SCALES,
    **reader_kwargs,
) -> VideoDataset:
    """A data set by name (``DATASETS``) with the release's transform for ``mode``.

    For ``name="list"``, ``split`` is the list file (relative to ``root`` or absolute)."""
    if name not in DATASETS:
        raise GSFConfigError(f"unknown data set {name!r}; choose from {sorted(DATASETS)}")
    common = dict(num_frames=num_frames, mode=mode, num_clips=num_clips, skip_bad_samples=skip_bad_samples,
                  cache_decoded=cache_decoded, decoded_cache=decoded_cache, test_sampling=test_sampling)
    if name == "list":
        list_file = Path(split) if Path(split).is_absolute() else Path(root) / split
        dataset = TSNList(list_file, root, **reader_kwargs, **common)
    else:
        dataset = DATASETS[name](root, split, **reader_kwargs, **common)
    dataset.transform = make_transform(
        mode, input_size, class_names=dataset.class_names, num_crops=num_crops,
        normalisation=normalisation, flip=flip, randaugment=randaugment, three_crop=three_crop,
        crop_scales=crop_scales,
    )
    return dataset
