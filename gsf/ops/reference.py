"""A plain transcription of the GSF operator (docs/gsf-operator.md section 1), kept as the oracle for the tests.

It is written for reading, not speed: a real Conv3d on the (B, C', T, H, W) layout, an explicit
per-channel shift loop, one fusion conv per group and an index list for the interleave. The fast
`GateShiftFuse` must match it in outputs and gradients for every knob, with the same state-dict keys.
"""

from __future__ import annotations

import torch
from torch import nn

from gsf.ops._knobs import GSF_DEFAULTS, LEARNED_GATES, GSFKnobs, gsf_channels
from gsf.ops.base import TemporalModule


def receives_next_frame(gated_channels: int, groups: int) -> list[bool]:
    """Per GSF channel: True if it receives the next frame (Y'[t] = Y[t+1]), False for the previous.

    With groups >= 2, group g (C'/groups consecutive channels) receives the next frame for even g and the
    previous frame for odd g (docs/gsf-operator.md section 1, step 4, for groups=2). With one group the first half of
    the channels receives the next frame and the second half the previous one.
    """
    if groups == 1:
        return [c < gated_channels // 2 for c in range(gated_channels)]
    per_group = gated_channels // groups
    return [(c // per_group) % 2 == 0 for c in range(gated_channels)]


def interleave_order(gated_channels: int, groups: int) -> list[int]:
    """Source channel of each output channel: in each group, output 2j + k comes from k * C_g/2 + j."""
    per_group = gated_channels // groups
    half = per_group // 2
    order = []
    for g in range(groups):
        for j in range(half):
            for k in range(2):
                order.append(g * per_group + k * half + j)
    return order


class GateShiftFuseReference(TemporalModule):
    """Reference GSF (docs/gsf-operator.md section 1); same constructor and state-dict keys as `GateShiftFuse`."""

    def __init__(self, channels: int, *, groups: int = GSF_DEFAULTS.groups, gate: str = GSF_DEFAULTS.gate,
                 fusion: str = GSF_DEFAULTS.fusion, channel_fraction: float = GSF_DEFAULTS.channel_fraction,
                 zero_init_gate: bool | None = GSF_DEFAULTS.zero_init_gate, layer_name: str = "") -> None:
        super().__init__()
        knobs = GSFKnobs(groups=groups, gate=gate, fusion=fusion, channel_fraction=channel_fraction,
                         zero_init_gate=zero_init_gate, layer_name=layer_name)
        self.channels = channels
        self.gated_channels = gsf_channels(channels, channel_fraction, groups, layer_name)
        self.groups = groups
        self.gate = gate
        self.fusion = fusion
        cp = self.gated_channels
        if gate in LEARNED_GATES:
            kernel = (3, 3, 3) if gate == "spatiotemporal" else (1, 3, 3)
            self.bn = nn.BatchNorm3d(cp)
            self.conv3D = nn.Conv3d(cp, groups, kernel, padding=(kernel[0] // 2, 1, 1), groups=groups)
            if knobs.gate_starts_at_zero:
                nn.init.zeros_(self.conv3D.weight)
                nn.init.zeros_(self.conv3D.bias)
        if fusion == "channel_weighting":
            for i in range(1, groups + 1):
                setattr(self, f"channel_conv{i}", nn.Conv2d(2, 1, 3, padding=1))

    def forward_frames(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        n, c, h, w = x.shape
        t = num_frames
        b = n // t
        cp, groups = self.gated_channels, self.groups
        per_group = cp // groups

        # Steps 1-2: the first C' channels, as (B, C', T, H, W).
        X = x[:, :cp].reshape(b, t, cp, h, w).permute(0, 2, 1, 3, 4)

        # Step 3: gate.
        if self.gate in LEARNED_GATES:
            gate_maps = torch.tanh(self.conv3D(torch.relu(self.bn(X))))  # (B, G, T, H, W)
            gate = gate_maps.repeat_interleave(per_group, dim=1)  # one map per channel of the group
            Y = gate * X
            R = X - Y
        elif self.gate == "plus_one":
            Y = X
            R = X - Y
        elif self.gate == "minus_one":
            Y = -X
            R = X - Y
        else:  # "none": no gating at all, the residual is the unshifted input
            Y = X
            R = X

        # Step 4: shift one frame, zero padding at the clip ends.
        Ys = torch.zeros_like(Y)
        for ch, nxt in enumerate(receives_next_frame(cp, groups)):
            if t == 1:
                continue
            if nxt:
                Ys[:, ch, : t - 1] = Y[:, ch, 1:]
            else:
                Ys[:, ch, 1:] = Y[:, ch, : t - 1]

        # Step 5: fuse.
        if self.fusion == "channel_weighting":
            parts = []
            for g in range(groups):
                sl = slice(g * per_group, (g + 1) * per_group)
                p = Ys[:, sl].mean(dim=(3, 4))  # (B, C'/G, T)
                q = R[:, sl].mean(dim=(3, 4))
                z = torch.stack([p, q], dim=1)  # (B, 2, C'/G, T): a (channel, time) image
                wg = torch.sigmoid(getattr(self, f"channel_conv{g + 1}")(z))[:, 0, :, :, None, None]
                parts.append(wg * Ys[:, sl] + (1 - wg) * R[:, sl])
            O = torch.cat(parts, dim=1)
        elif self.fusion == "sum":
            O = Ys + R
        else:  # "average"
            O = 0.5 * Ys + 0.5 * R

        # Step 6: per-group channel interleave.
        O = O[:, interleave_order(cp, groups)]

        # Step 7: back to (B*T, C', H, W), bypass channels appended.
        O = O.permute(0, 2, 1, 3, 4).reshape(n, cp, h, w)
        return torch.cat([O, x[:, cp:]], dim=1)
