"""Temporal Interlace module (TIN; Shao, Qian and Liu, "Temporal Interlacing Network", AAAI 2020), as
mmaction2's ``TemporalInterlace`` and the official release compute it (docs/temporal-modules.md, "TIN"),
in pure PyTorch: it runs on CPU, keeps the input's dtype, and its gradient is the true gradient of the
linear interpolation, offsets included."""

from __future__ import annotations

import torch
from torch import nn

from gsf.errors import GSFConfigError
from gsf.ops._knobs import TIN_DEFAULTS, TINKnobs, check_channels
from gsf.ops.base import FixedLengthTemporalModule

# The release's constants. fc2's bias starts at log(0.625 / 0.375) = 0.5108, so sigmoid(bias) = 0.625 and a
# zero fc2 input gives offsets 4 * (0.625 - 0.5) = +0.5 and, negated, -0.5. Offsets are 4 * (sigmoid - 0.5),
# in (-2, 2) whatever T; weights 2 * sigmoid, in (0, 2), starting near 1 (weight_net's bias starts at 0).
OFFSET_BIAS_INIT = 0.5108
OFFSET_SCALE = 4.0
WEIGHT_SCALE = 2.0
OFFSET_GROUPS = 2  # two learned offsets per clip; with their negatives they move four channel quarters


class _OffsetNet(nn.Module):
    """(B, F, T) descriptor -> (B, 2) offsets in (-2, 2), one pair per clip."""

    def __init__(self, channels: int, num_frames: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, 1, 3, padding=1)
        self.fc1 = nn.Linear(num_frames, num_frames)
        self.fc2 = nn.Linear(num_frames, OFFSET_GROUPS)
        nn.init.constant_(self.fc2.bias, OFFSET_BIAS_INIT)

    def forward(self, descriptor: torch.Tensor) -> torch.Tensor:
        b, _, t = descriptor.shape
        hidden = torch.relu(self.fc1(self.conv(descriptor).reshape(b, t)))
        return OFFSET_SCALE * (torch.sigmoid(self.fc2(hidden)) - 0.5)


class _WeightNet(nn.Module):
    """(B, F, T) descriptor -> (B, 2, T) weights in (0, 2), one per clip, output frame and offset group."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(channels, OFFSET_GROUPS, 3, padding=1)
        nn.init.zeros_(self.conv.bias)

    def forward(self, descriptor: torch.Tensor) -> torch.Tensor:
        return WEIGHT_SCALE * torch.sigmoid(self.conv(descriptor))


def interpolate_frames(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Y[b, t, g] = (1 - f) X[b, t - n, g] + f X[b, t - n - 1, g], n = floor(s), f = s - n, s = offsets[b, g]:
    X read at the fractional frame t - s by linear interpolation, zero outside the clip.

    x: (B, T, G, D); offsets: (B, G). A positive offset makes frame t read earlier frames. The floor carries no
    gradient: the offsets receive theirs through f (dY/ds = X[t - n - 1] - X[t - n]), and x the exact adjoint of
    the shift and interpolation (autograd of gather).
    """
    b, t, g, d = x.shape
    whole = torch.floor(offsets.detach())
    fraction = (offsets - whole).view(b, 1, g, 1)
    source = torch.arange(t, device=x.device).view(1, t, 1) - whole.long().view(b, 1, g)  # (B, T, G): t - n

    def frame(index: torch.Tensor) -> torch.Tensor:
        inside = ((index >= 0) & (index < t)).to(x.dtype).unsqueeze(-1)
        gathered = torch.gather(x, 1, index.clamp(0, t - 1).unsqueeze(-1).expand(b, t, g, d))
        return gathered * inside

    return (1 - fraction) * frame(source) + fraction * frame(source - 1)


class TemporalInterlace(FixedLengthTemporalModule):
    """TIN over a (B*T, C, H, W) feature map: the first F = C // shift_div channels are interlaced, the others
    copied.

    The F channels form four consecutive quarters. From their spatial means d (B, F, T), ``offset_net``
    (Conv1d F -> 1 over time, Linear T -> T, ReLU, Linear T -> 2, 4 * (sigmoid - 0.5)) gives two offsets
    (o0, o1) per clip and ``weight_net`` (Conv1d F -> 2 over time, 2 * sigmoid) two weights (w0, w1) per clip
    and frame. Quarter k is shifted in time by (o0, o1, -o0, -o1)[k] frames with linear interpolation
    (`interpolate_frames`, zero padded) and then multiplied by w_(k mod 2) of the output frame.

    Args:
        channels: C, the channels of the input feature map.
        num_frames: T, the clip length the module is built for (fc1 and fc2 are T wide; any other T is an
            error, see `FixedLengthTemporalModule`).
        shift_div: F = C // shift_div channels are interlaced; F must be a positive multiple of 4 (four
            quarters). The published models use 4 (the default, `gsf.ops._knobs.TINKnobs`).
        layer_name: where the module sits in the backbone, only used in error messages.

    State-dict keys are the release's (mmaction2's): ``offset_net.conv.*``, ``offset_net.fc1.*``,
    ``offset_net.fc2.*``, ``weight_net.conv.*``. Initialisation as there: PyTorch's defaults, except
    ``offset_net.fc2.bias`` = 0.5108 and ``weight_net.conv.bias`` = 0. Parameters: 9F + T^2 + 3T + 5.
    """

    def __init__(self, channels: int, *, num_frames: int, shift_div: int = TIN_DEFAULTS.tin_shift_div,
                 layer_name: str = "") -> None:
        super().__init__(num_frames=num_frames, layer_name=layer_name)
        check_channels(channels, layer_name)
        TINKnobs(tin_shift_div=shift_div, layer_name=layer_name)
        folds = channels // shift_div
        if folds < 4 or folds % 4 != 0:
            where = f"layer {layer_name!r}" if layer_name else "TemporalInterlace"
            raise GSFConfigError(f"{where}: C={channels} channels with tin_shift_div={shift_div} give "
                                 f"F={folds} interlaced channels, but F must be a positive multiple of 4 (four "
                                 "channel quarters, each shifted by its own offset)")
        self.channels = channels
        self.shift_div = shift_div
        self.folds = folds
        self.offset_net = _OffsetNet(folds, num_frames)
        self.weight_net = _WeightNet(folds)

    def extra_repr(self) -> str:
        return f"{self.channels}, num_frames={self.clip_length}, shift_div={self.shift_div}, folds={self.folds}"

    def forward_frames(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        n, c, h, w = x.shape
        t, folds = num_frames, self.folds
        b = n // t
        frames = x.reshape(b, t, c, h * w)
        interlaced = frames[:, :, :folds]  # (B, T, F, H*W)
        descriptor = interlaced.mean(dim=3).transpose(1, 2)  # (B, F, T)
        pair = self.offset_net(descriptor)  # (B, 2)
        offsets = torch.cat([pair, -pair], dim=1)  # quarter k: (o0, o1, -o0, -o1)[k]
        weights = self.weight_net(descriptor).repeat(1, 2, 1)  # (B, 4, T): quarter k gets w_(k mod 2)
        shifted = interpolate_frames(interlaced.reshape(b, t, 4, (folds // 4) * h * w), offsets)
        out = (shifted * weights.transpose(1, 2).unsqueeze(-1)).reshape(b, t, folds, h * w)
        if folds < c:
            out = torch.cat([out, frames[:, :, folds:]], dim=2)
        return out.reshape(n, c, h, w)
