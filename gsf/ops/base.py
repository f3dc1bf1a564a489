"""Base class of the temporal modules and the clip-length plumbing they share.

A temporal module sees per-frame feature maps. The backbone runs every frame as an image, so inside it
the frames of a clip are stacked along the batch axis (TSN layout, docs/gsf-operator.md section 1): (B*T, C, H, W)
with the T frames of one clip contiguous. For TSM, GSM and GSF the clip length T is not a property of the
layer; it is set at run time (argument or `num_frames` attribute), so one model runs at any T without a
rebuild (docs/gsf-operator.md section 4). TAM and TIN have weights shaped by T: they are
`FixedLengthTemporalModule`s, built for one T and refusing any other (docs/temporal-modules.md).
"""

from __future__ import annotations

import torch
from torch import nn

from gsf.errors import GSFConfigError


class TemporalModule(nn.Module):
    """A module mixing information across the T frames of a clip; the output has the input's shape.

    Subclasses implement `forward_frames(x, num_frames)` on the (B*T, C, H, W) layout; `forward` accepts
    either (B*T, C, H, W), with T from the `num_frames` argument or else the `num_frames` attribute,
    or (B, T, C, H, W), where T is read from the shape.
    """

    num_frames: int | None

    def __init__(self) -> None:
        super().__init__()
        self.num_frames = None

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        if x.dim() == 5:
            batch, frames = x.shape[0], x.shape[1]
            if num_frames is not None and num_frames != frames:
                raise GSFConfigError(
                    f"{type(self).__name__}: num_frames={num_frames} contradicts the input shape "
                    f"{tuple(x.shape)} read as (B, T, C, H, W) with T={frames}"
                )
            out = self.forward_frames(x.flatten(0, 1), frames)
            return out.unflatten(0, (batch, frames))
        if x.dim() != 4:
            raise GSFConfigError(
                f"{type(self).__name__}: expected (B*T, C, H, W) or (B, T, C, H, W), got shape {tuple(x.shape)}"
            )
        frames = resolve_num_frames(x.shape[0], num_frames if num_frames is not None else self.num_frames,
                                    owner=type(self).__name__)
        return self.forward_frames(x, frames)

    def forward_frames(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Apply the module to x of shape (B*T, C, H, W), T = num_frames."""
        raise NotImplementedError


class FixedLengthTemporalModule(TemporalModule):
    """A temporal module whose clip length T is part of its architecture: its weights are shaped by T, so
    it is built for one T (``clip_length``) and runs only at that T (docs/temporal-modules.md).

    ``num_frames`` starts at ``clip_length``, so a (B*T, C, H, W) input needs no argument. A call at any
    other T (argument, ``num_frames`` attribute as the video model sets it, or a (B, T, C, H, W) input) is
    a :class:`GSFConfigError` naming the module and both clip lengths, never a silent regrouping of the
    frames into clips of ``clip_length``.
    """

    def __init__(self, *, num_frames: int, layer_name: str = "") -> None:
        super().__init__()
        where = f"layer {layer_name!r}" if layer_name else type(self).__name__
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            raise GSFConfigError(f"{where}: num_frames (the clip length T this module is built for) must be a "
                                 f"positive int, got {num_frames!r}")
        self.clip_length = num_frames
        self.num_frames = num_frames
        self.layer_name = layer_name

    def forward(self, x: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        if x.dim() == 5 and num_frames is None:
            num_frames = int(x.shape[1])
        frames = num_frames if num_frames is not None else self.num_frames
        if frames is not None and frames != self.clip_length:
            where = f" at {self.layer_name!r}" if self.layer_name else ""
            raise GSFConfigError(
                f"{type(self).__name__}{where} is built for clips of T={self.clip_length} frames (T is part of "
                f"its architecture: its weights are shaped by it) but was given clips of T={frames}; build the "
                f"model with num_frames={frames} (data.num_frames) to run {frames}-frame clips"
            )
        return super().forward(x, num_frames)


def resolve_num_frames(batch_frames: int, num_frames: int | None, *, owner: str = "temporal module") -> int:
    """Check that the clip length T is known and divides the (B*T) leading axis; return T."""
    if num_frames is None:
        raise GSFConfigError(
            f"{owner}: the clip length is unknown for a (B*T, C, H, W) input; pass num_frames=T, call "
            "gsf.ops.set_num_frames(model, T), or give a (B, T, C, H, W) input"
        )
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise GSFConfigError(f"{owner}: num_frames must be a positive int, got {num_frames!r}")
    if batch_frames % num_frames != 0:
        raise GSFConfigError(
            f"{owner}: num_frames={num_frames} does not divide the leading axis {batch_frames} of a "
            "(B*T, C, H, W) input"
        )
    return num_frames


def set_num_frames(model: nn.Module, num_frames: int | None) -> int:
    """Set `num_frames` on every TemporalModule inside `model` (itself included); return how many."""
    if num_frames is not None and (isinstance(num_frames, bool) or not isinstance(num_frames, int)
                                   or num_frames < 1):
        raise GSFConfigError(f"num_frames must be a positive int or None, got {num_frames!r}")
    count = 0
    for module in model.modules():
        if isinstance(module, TemporalModule):
            module.num_frames = num_frames
            count += 1
    return count
