"""The CUHK InceptionV3 backbone as used by the GSF release (docs/gsf-operator.md section 2); not torchvision's Inception3.

The layer graph is data (`gsf.models.specs.inception_v3`); module ids are the authors' state-dict keys.
229 px BGR input in 0-255 minus (104, 117, 128) (224 px fails: branch sizes differ at `mixed_3_join`);
2048-d features after the global pool, no classifier.
"""

from __future__ import annotations

from gsf.models.inception_graph import InceptionGraph, insert_temporal_modules
from gsf.models.specs import inception_v3 as spec

__all__ = ["InceptionV3", "build_inception_v3", "insert_temporal_modules"]


class InceptionV3(InceptionGraph):
    """InceptionV3 (CUHK): frames (N, 3, 229, 229) -> features (N, 2048).

    Temporal placements: "authors" (11 slots: the first conv of each mixed block), "every_branch" (40:
    the first conv of every branch), "none".
    """

    feature_dim = 2048
    input_size = 229

    def __init__(self, *, in_channels: int = 3) -> None:
        super().__init__(spec.GRAPH, output="top_cls_global_pool", in_channels=in_channels,
                         extra_placements={"every_branch": spec.EVERY_BRANCH})


def build_inception_v3(*, in_channels: int = 3) -> InceptionV3:
    """Build InceptionV3 with PyTorch default initialisation (no pretrained weights).

    `in_channels` is 3 for RGB frames (given as BGR); other values serve stacked inputs such as optical flow.
    """
    return InceptionV3(in_channels=in_channels)
