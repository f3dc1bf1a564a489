"""Temporal Adaptive Module (TAM; Liu et al., "TAM: Temporal Adaptive Module for Video Recognition",
ICCV 2021), as its official release computes it (docs/temporal-modules.md, "TAM")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gsf.errors import GSFConfigError
from gsf.ops._knobs import TAM_DEFAULTS, TAMKnobs, check_channels
from gsf.ops.base import FixedLengthTemporalModule


class TemporalAdaptive(FixedLengthTemporalModule):
    """TAM over a (B*T, C, H, W) feature map; the output replaces the input (no residual inside).

    From the spatial means s[b, c, :] of each channel over the clip (one descriptor for both branches):

    - the global branch ``G`` (Linear T -> alpha*T, BatchNorm1d, ReLU, Linear -> K, softmax over the K taps)
      gives one temporal kernel w[b, c] per video and channel, shared by every frame and pixel;
    - the local branch ``L`` (Conv1d C -> C // beta over time with K taps, BatchNorm1d, ReLU, Conv1d back to
      C with one tap, sigmoid) gives an importance a[b, c, t] in (0, 1), shared by every pixel.

    The output is Z[t] = sum_k w[k] * (a * X)[t + k - K // 2], zero padded at the clip ends (a
    cross-correlation: with K = 3, tap 0 reads frame t - 1). The aggregation is one grouped ``F.conv2d``
    over (1, B*C, T, H*W), as the release computes it, so complexity counters see its K*C*T*H*W
    multiply-accumulates.

    Args:
        channels: C, the channels of the input feature map.
        num_frames: T, the clip length the module is built for (G's widths depend on it; any other T is an
            error, see `FixedLengthTemporalModule`).
        kernel_size: K, odd: taps of the adaptive kernel and of the local branch's first conv (the release: 3,
            one K for both).
        global_expansion: the paper's alpha: G's hidden width is alpha * T (the release: 2).
        local_reduction: the paper's beta: L's hidden channels are C // beta (the release: 4).
        layer_name: where the module sits in the backbone, only used in error messages.
        The knobs' defaults and valid values are those of `gsf.ops._knobs.TAMKnobs` (``tam_``-prefixed there).

    State-dict keys are the release's: ``G.0.weight``, ``G.1.*`` (BatchNorm1d), ``G.3.weight``, ``L.0.weight``,
    ``L.1.*``, ``L.3.weight``. Every parameter keeps PyTorch's default initialisation, as in the release.
    Parameters with the defaults: C^2 + C/2 + 2T^2 + 10T for C divisible by 4.
    """

    def __init__(self, channels: int, *, num_frames: int, kernel_size: int = TAM_DEFAULTS.tam_kernel_size,
                 global_expansion: int = TAM_DEFAULTS.tam_global_expansion,
                 local_reduction: int = TAM_DEFAULTS.tam_local_reduction, layer_name: str = "") -> None:
        super().__init__(num_frames=num_frames, layer_name=layer_name)
        check_channels(channels, layer_name)
        TAMKnobs(tam_kernel_size=kernel_size, tam_global_expansion=global_expansion,
                 tam_local_reduction=local_reduction, layer_name=layer_name)
        reduced = channels // local_reduction
        if reduced < 1:
            where = f"layer {layer_name!r}" if layer_name else "TemporalAdaptive"
            raise GSFConfigError(f"{where}: C={channels} channels with tam_local_reduction="
                                 f"{local_reduction} leave the local branch no channel (C // reduction = 0)")
        self.channels = channels
        self.kernel_size = kernel_size
        self.global_expansion = global_expansion
        self.local_reduction = local_reduction
        hidden = global_expansion * num_frames
        # Indices 2 and 4 are the stateless activations, so the release's keys G.0/G.1/G.3, L.0/L.1/L.3 hold.
        self.G = nn.Sequential(nn.Linear(num_frames, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                               nn.Linear(hidden, kernel_size, bias=False), nn.Softmax(dim=-1))
        self.L = nn.Sequential(nn.Conv1d(channels, reduced, kernel_size, padding=kernel_size // 2, bias=False),
                               nn.BatchNorm1d(reduced), nn.ReLU(),
                               nn.Conv1d(reduced, channels, 1, bias=False), nn.Sigmoid())

    def extra_repr(self) -> str:
        return (f"{self.channels}, num_frames={self.clip_length}, kernel_size={self.kernel_size}, "
                f"global_expansion={self.global_expansion}, local_reduction={self.local_reduction}")

    def forward_frames(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        n, c, h, w = x.shape
        t = num_frames
        b = n // t
        frames = x.reshape(b, t, c, h * w)
        s = frames.mean(dim=3).transpose(1, 2)  # (B, C, T): spatial means of the raw input
        kernel = self.G(s.reshape(b * c, t))  # (B*C, K), sums to 1 over the taps
        importance = self.L(s)  # (B, C, T), in (0, 1)
        y = frames.transpose(1, 2) * importance.unsqueeze(-1)  # (B, C, T, H*W)
        z = F.conv2d(y.reshape(1, b * c, t, h * w), kernel.view(b * c, 1, self.kernel_size, 1),
                     padding=(self.kernel_size // 2, 0), groups=b * c)
        return z.view(b, c, t, h * w).transpose(1, 2).reshape(n, c, h, w)
