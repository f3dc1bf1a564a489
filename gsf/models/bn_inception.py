"""TSN's BN-Inception backbone as used by the GSF release (docs/gsf-operator.md section 2).

The layer graph is data (`gsf.models.specs.bn_inception`); module ids are the authors' state-dict keys.
224 px BGR input in 0-255 minus (104, 117, 128); 1024-d features after the global pool, no classifier.
"""

from __future__ import annotations

from gsf.models.inception_graph import InceptionGraph, insert_temporal_modules
from gsf.models.specs import bn_inception as spec

__all__ = ["BNInception", "build_bn_inception", "insert_temporal_modules"]


class BNInception(InceptionGraph):
    """BN-Inception: frames (N, 3, 224, 224) -> features (N, 1024).

    Temporal placements: "authors" (10 slots: the 1x1 branch of 3a, 3b, 4a-4d, 5a, 5b and the
    3x3_reduce of the reduction blocks 3c, 4e), "every_branch" (36: the first conv of every branch),
    "none".
    """

    feature_dim = 1024
    input_size = 224

    def __init__(self, *, in_channels: int = 3) -> None:
        super().__init__(spec.GRAPH, output="global_pool", in_channels=in_channels,
                         extra_placements={"every_branch": spec.EVERY_BRANCH})


def build_bn_inception(*, in_channels: int = 3) -> BNInception:
    """Build BN-Inception with PyTorch default initialisation (no pretrained weights).

    `in_channels` is 3 for RGB frames (given as BGR); other values serve stacked inputs such as TSN's
    optical flow.
    """
    return BNInception(in_channels=in_channels)
