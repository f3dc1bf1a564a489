"""Data sets, sampling, augmentation and the synthetic temporal benchmark.

Importing this package only binds names; nothing is read, written or decoded at import time.

Public API
----------
- :class:`VideoRecord`: one annotated sample of any release format.
- Data sets (``root`` is the folder as released): :class:`SomethingSomethingV1`,
  :class:`SomethingSomethingV2`, :class:`Diving48`, :class:`Kinetics400`, :class:`EpicKitchens100`,
  :class:`TSNList`; :func:`build_dataset` picks one by name.
- Sampling (docs/recipe.md): :func:`segment_offsets`.
- Transforms (docs/recipe.md): :class:`TrainAugmentation`, :class:`TestViews`, :func:`mirror_label_swap`.
- Synthetic data: :func:`synthesize_dataset`, :func:`synthetic_pairs`.
- Loader helper: :func:`collate_clips` (drops skipped samples and reports them per batch).
"""

from gsf.data.datasets import (
    DATASETS,
    Diving48,
    EpicKitchens100,
    Kinetics400,
    SomethingSomethingV1,
    SomethingSomethingV2,
    TSNList,
    VideoDataset,
    build_dataset,
    collate_clips,
    make_transform,
)
from gsf.data.records import VideoRecord
from gsf.data.sampling import SAMPLING_MODES, segment_offsets
from gsf.data.synth import synthesize_dataset, synthetic_pairs
from gsf.data.transforms import (
    NORMALISATIONS,
    ClipRandAugment,
    MultiScaleCrop,
    Normalize,
    TestViews,
    TrainAugmentation,
    mirror_label_swap,
)

__all__ = [
    "DATASETS",
    "NORMALISATIONS",
    "SAMPLING_MODES",
    "ClipRandAugment",
    "Diving48",
    "EpicKitchens100",
    "Kinetics400",
    "MultiScaleCrop",
    "Normalize",
    "SomethingSomethingV1",
    "SomethingSomethingV2",
    "TSNList",
    "TestViews",
    "TrainAugmentation",
    "VideoDataset",
    "VideoRecord",
    "build_dataset",
    "collate_clips",
    "make_transform",
    "mirror_label_swap",
    "segment_offsets",
    "synthesize_dataset",
    "synthetic_pairs",
]
