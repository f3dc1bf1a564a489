"""Temporal Shift Module (TSM; docs/gsf-operator.md section 1, "Relatives"): a parameter-free one-frame shift."""

from __future__ import annotations

import torch

from gsf.errors import GSFConfigError
from gsf.ops._knobs import TSM_DEFAULTS, TSMKnobs, check_channels
from gsf.ops.base import TemporalModule


class TemporalShift(TemporalModule):
    """Shift a fold of channels one frame each way, zero padded at the clip ends; zero parameters.

    Args:
        channels: C, the channels of the input feature map.
        shift_fraction: fraction of the channels in each shifted fold, in (0, 1/2]; fold =
            int(C * shift_fraction) must be at least 1. Channels [0, fold) receive the next frame
            (out[t] = x[t + 1]), channels [fold, 2 fold) the previous one (out[t] = x[t - 1]), the rest
            are untouched. TSM uses 1/8 (the default, `gsf.ops._knobs.TSMKnobs`).
        layer_name: where the module sits in the backbone, only used in error messages.
    """

    def __init__(self, channels: int, *, shift_fraction: float = TSM_DEFAULTS.shift_fraction,
                 layer_name: str = "") -> None:
        super().__init__()
        where = f"layer {layer_name!r}" if layer_name else "temporal module"
        check_channels(channels, layer_name)
        TSMKnobs(shift_fraction=shift_fraction, layer_name=layer_name)
        fold = int(channels * shift_fraction)
        if fold < 1:
            raise GSFConfigError(
                f"{where}: C={channels} channels with shift_fraction={shift_fraction} give a shifted fold of "
                "0 channels; use a larger shift_fraction"
            )
        self.channels = channels
        self.shift_fraction = shift_fraction
        self.fold = fold

    def extra_repr(self) -> str:
        return f"{self.channels}, fold={self.fold}"

    def forward_frames(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        n, c, h, w = x.shape
        fold = self.fold
        xv = x.view(n // num_frames, num_frames, c, h * w) if x.is_contiguous() else \
            x.reshape(n // num_frames, num_frames, c, h * w)
        out = torch.empty_like(xv)
        out[:, :-1, :fold] = xv[:, 1:, :fold]
        out[:, -1, :fold] = 0
        out[:, 1:, fold:2 * fold] = xv[:, :-1, fold:2 * fold]
        out[:, 0, fold:2 * fold] = 0
        out[:, :, 2 * fold:] = xv[:, :, 2 * fold:]
        return out.view(n, c, h, w)
