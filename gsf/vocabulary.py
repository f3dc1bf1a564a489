"""The closed vocabularies several layers share (configuration, models, ops, data, sweeps), each written
once here. Plain Python, no torch: the configuration imports it without loading the model code.
"""

from __future__ import annotations

# Temporal module kinds (docs/gsf-operator.md section 1; TAM and TIN: docs/temporal-modules.md): "none" is TSN (no
# temporal module). gsf.ops.registry holds the facts of each, in this order.
TEMPORAL_KINDS = ("none", "tsm", "gsm", "gsf", "tam", "tin")

# Classes of each data-set format as published (docs/data-formats.md); EPIC-Kitchens-100 has a verb and a noun
# head. "list" (a TSN list file) and synthetic data read theirs from their label files; 174 (Something-
# Something's) stands in where no file says otherwise.
PUBLISHED_NUM_CLASSES: dict[str, int | dict[str, int]] = {
    "ssv1": 174,
    "ssv2": 174,
    "diving48": 48,
    "kinetics400": 400,
    "epic100": {"verb": 97, "noun": 300},
    "list": 174,
}

# Data-set formats ``data.dataset`` accepts (:data:`gsf.data.DATASETS` maps each to its reader).
DATASET_NAMES = tuple(PUBLISHED_NUM_CLASSES)

# The release's TSN multi-scale crop sides, as fractions of the frame's shorter side (docs/recipe.md):
# ``data.train_crop_scales``'s default and :class:`gsf.data.transforms.MultiScaleCrop`'s.
RELEASE_CROP_SCALES = (1.0, 0.875, 0.75, 0.66)
