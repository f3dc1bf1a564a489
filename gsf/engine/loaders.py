"""What training and evaluation share: the data set of a split, its loaders, the class count, seeding
and the autocast context. Below :mod:`gsf.engine.trainer` and :mod:`gsf.engine.evaluate` (and above
:mod:`gsf.engine.config` and :mod:`gsf.engine.distributed`), so neither of the two imports the other.

Determinism (docs/recipe.md, exact resume): the train sampler and the loader workers of epoch e
are seeded from ``(seed, e)`` (:func:`epoch_seed`); workers seed Python and numpy from their torch seed
(:func:`seed_worker`).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

from gsf.engine.config import TrainConfig, parse_views, resolve_device
from gsf.engine.distributed import Group
from gsf.errors import GSFDataError


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 63-bit seed for epoch ``epoch`` of a run seeded ``seed`` (sampler order and loader workers); each
    data-parallel rank > 0 gets its own."""
    entropy = [seed, epoch] if rank == 0 else [seed, epoch, rank]
    return int(np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
    """Seed the global torch, numpy and Python generators."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: seed Python and numpy from the worker's torch seed (set by the loader from
    the epoch's generator), so augmentation in workers is reproducible."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def build_split(config: TrainConfig, split: str, *, train: bool, views: str | None = None,
                decoded_cache: dict | None = None):
    """The data set of ``split``: train augmentation, or test views ``views`` (CLIPSxCROPS, default
    ``data.val_views``), normalised as the backbone's ImageNet weights expect. With ``data.cache_decoded``,
    ``decoded_cache`` (a dict) is where decoded videos are kept, shared by every data set given the same one."""
    from gsf.data import build_dataset
    from gsf.models.registry import backbone_spec

    d = config.data
    clips, crops = parse_views(views or d.val_views)
    dataset = build_dataset(
        d.dataset, d.root, split, num_frames=d.num_frames, mode="train" if train else "test",
        input_size=d.input_size, num_clips=1 if train else clips, num_crops=1 if train else crops,
        normalisation=backbone_spec(config.model.backbone).normalisation, randaugment=d.randaugment,
        crop_scales=tuple(d.train_crop_scales),
        skip_bad_samples=d.skip_bad_samples, cache_decoded=d.cache_decoded, decoded_cache=decoded_cache,
        three_crop=d.test_three_crops, test_sampling=d.test_sampling,
    )
    if d.max_videos is not None:
        dataset.records = dataset.records[: d.max_videos]
    return dataset


def data_fingerprint(config: TrainConfig, cache_dir=None, *, refresh: bool = False):
    """The :class:`gsf.data.fingerprint.DataFingerprint` of the splits a run of ``config`` reads (train and
    validation, the first ``data.max_videos`` of each): kept in ``cache_dir`` (a run's folder) when given,
    else computed afresh."""
    from gsf.data.fingerprint import cached_fingerprint, fingerprint_dataset, splits_read

    d = config.data
    splits = splits_read(d.train_split, d.val_split)
    if cache_dir is None:
        return fingerprint_dataset(d.dataset, d.root, splits, max_videos=d.max_videos)
    return cached_fingerprint(cache_dir, d.dataset, d.root, splits, max_videos=d.max_videos, refresh=refresh)


def num_classes_of(dataset) -> int | dict[str, int]:
    """The class count of ``dataset``'s labels: an int, or ``{"verb": Kv, "noun": Kn}`` for two heads."""
    names = dataset.class_names
    if isinstance(names, tuple) and len(names) == 2 and not isinstance(names[0], str):
        return {"verb": len(names[0]), "noun": len(names[1])}
    if len(names) < 1:
        raise GSFDataError(f"data set {type(dataset).__name__} reports no classes")
    return len(names)


def eval_loader(dataset, config: TrainConfig, num_views: int, indices: Sequence[int] | None = None) -> DataLoader:
    """The videos of ``dataset`` in order (only ``indices``, in their order, when given)."""
    from gsf.data import collate_clips

    return DataLoader(dataset, batch_size=max(1, config.data.batch_size // num_views),
                      sampler=SequentialSampler(dataset) if indices is None else indices,
                      num_workers=config.data.num_workers, collate_fn=collate_clips, worker_init_fn=seed_worker,
                      pin_memory=resolve_device(config) == "cuda")


def train_loader(dataset, config: TrainConfig, epoch: int, where: Group) -> DataLoader:
    """Epoch ``epoch``'s shuffled batches of ``dataset`` for rank ``where.rank`` (its disjoint share in a
    process group), in an order fixed by ``(runtime.seed, epoch)``."""
    from gsf.data import collate_clips

    generator = torch.Generator().manual_seed(epoch_seed(config.runtime.seed, epoch, where.rank))
    if where.active:
        sampler = DistributedSampler(dataset, num_replicas=where.world_size, rank=where.rank, shuffle=True,
                                     seed=config.runtime.seed, drop_last=False)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(dataset, batch_size=config.data.batch_size, sampler=sampler,
                      num_workers=config.data.num_workers, collate_fn=collate_clips, worker_init_fn=seed_worker,
                      generator=generator, pin_memory=resolve_device(config) == "cuda")


def autocast_for(device: str, precision: str) -> contextlib.AbstractContextManager:
    """A fresh autocast context for ``precision`` (bf16/fp16), or a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
