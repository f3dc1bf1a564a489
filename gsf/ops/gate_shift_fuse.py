"""Gate-Shift-Fuse (docs/gsf-operator.md section 1) and its gated relative GSM, as fast pure nn.Modules.

Same semantics and state-dict keys as `gsf.ops.reference.GateShiftFuseReference`; the tests hold the two
equal in outputs and gradients for every knob. What differs is only how the work is laid out for speed,
with one layout per device and mode (`path_for_device`): hand-written autograd Functions over cache-sized
pieces on CPU in eager mode, standard operators for `torch.compile` and for other devices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gsf.ops._gsf_functions import GateTaps, ShiftFuse
from gsf.ops._knobs import (
    GSF_DEFAULTS,
    GSM_DEFAULTS,
    LEARNED_GATES,
    GSFKnobs,
    GSMKnobs,
    check_choice,
    gsf_channels,
)
from gsf.ops.base import TemporalModule, resolve_num_frames

GSF_PATHS = ("auto", "fused", "composed")


def path_for_device(device_type: str, *, compiled: bool = False) -> str:
    """The computation path `path="auto"` takes for a learned gate on a device of this type, run eager or
    under `torch.compile` (`compiled`; `GateShiftFuse` asks `torch.compiler.is_compiling()`).

    Eager on CPU: "fused", the hand-written `GateTaps` / `ShiftFuse` of `gsf.ops._gsf_functions`, which cut
    large maps into cache-sized pieces and save only X for backward.
    Compiled, and eager on every other device: "composed", standard operators only, no Python loop over
    pieces, which Inductor fuses into a few loops (C++/OpenMP on CPU, Triton on GPU); dynamo would unroll the
    fused path's loops, one set of operators per piece. On a GPU every piece of the fused path is a handful
    of small kernel launches. The measurements behind each choice: results/benchmarks/README.md, section
    "Which path `auto` takes".
    """
    return "fused" if device_type == "cpu" and not compiled else "composed"


def _grouped_conv3d_as_taps(Z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                            padding: tuple[int, int, int], groups: int) -> torch.Tensor:
    """The gate conv of step 3 (docs/gsf-operator.md section 1), a grouped Conv3d with G output channels over
    Z (B, T, C', H, W), as (B, T, G, H*W): one matrix product gives every tap's contribution,
    (G, K, C'/G) @ (B, T, G, C'/G, H*W) -> (B, T, G, K, H*W) for the K = kt*kh*kw taps, and each tap's
    map is then shifted into place by a zero padding (negative where it crops) and summed.

    The same function as `F.conv3d(..., padding, groups)`. A convolution with so few output channels runs
    far below the backbone's efficiency (on CPU the fused path does the same, `gsf.ops._gsf_functions`);
    the product over C' is a plain matmul, and the K shifted sums over the small (B, G, T, H, W) maps are
    element-wise work that `torch.compile` fuses into one loop. Taps are separated with `unbind`, whose
    backward is one `stack`, and shifted with `F.pad`, whose backward is a pad of the small map."""
    batch, frames, cp, h, w = Z.shape
    kt, kh, kw = weight.shape[2:]
    pt, ph, pw = padding
    per_group = cp // groups
    taps_weight = weight.permute(0, 2, 3, 4, 1).reshape(groups, kt * kh * kw, per_group)
    taps = torch.matmul(taps_weight, Z.reshape(batch, frames, groups, per_group, h * w))  # (B, T, G, K, HW)
    per_tap = taps.permute(3, 0, 2, 1, 4).unflatten(-1, (h, w)).unbind(0)  # K x (B, G, T, H, W)
    out = None
    for k, tap in enumerate(per_tap):
        a, b, c = k // (kh * kw), (k // kw) % kh, k % kw
        # out[t, y, x] += tap[t + a - pt, y + b - ph, x + c - pw], zero outside
        shifted = F.pad(tap, (pw - c, c - pw, ph - b, b - ph, pt - a, a - pt))
        out = shifted if out is None else out + shifted
    out = out + bias.view(1, groups, 1, 1, 1)
    return out.transpose(1, 2).reshape(batch, frames, groups, h * w)


class GateShiftFuse(TemporalModule):
    """Gate-Shift-Fuse over the first C' channels of a (B*T, C, H, W) feature map (docs/gsf-operator.md section 1).

    Args:
        channels: C, the channels of the input feature map.
        groups: number of gate maps G in {1, 2, 4, 8}. The C' gated channels are split into G consecutive
            groups of C'/G channels, each with its own gate map (the gate conv has G output channels,
            groups=G), its own fusion conv `channel_conv{i}` and its own channel interleave. Even-index
            groups receive the next frame, odd-index groups the previous one, so half of the gated
            channels move each way. With groups=1 the single group's first half receives the next frame
            and its second half the previous one. The paper uses 2.
        gate: how the gate G in Y = G * X, R = X - Y is made (step 3).
            "spatiotemporal": tanh(Conv3d(ReLU(BN3d(X)))) with a 3x3x3 kernel (the paper).
            "spatial": the same with a 1x3x3 kernel (no temporal extent).
            "plus_one": fixed gate 1, so Y = X is shifted and R = 0 (a TSM-like pure shift).
            "minus_one": fixed gate -1, so Y = -X and R = 2X; with "sum" fusion O = 2X[t] - X[t +- 1],
                a temporal difference (TDN-like).
            "none": no gating at all: Y = X is shifted and R = X is the unshifted input, so the fusion
                mixes shifted and unshifted features (not the same as "plus_one", where R = 0).
            The fixed gates have no parameters (no `bn`, no `conv3D`).
        fusion: how the shifted gated part Y' and the residual R are combined (step 5).
            "channel_weighting": O = w * Y' + (1 - w) * R, w = sigmoid(Conv2d over the (channel, time)
                image of the spatial means of Y' and R), one 3x3 conv per group (the paper).
            "sum": O = Y' + R (GSM). "average": O = 0.5 * (Y' + R), i.e. w fixed at 0.5.
        channel_fraction: fraction in (0, 1] of the channels that go through GSF; C' = int(C * fraction)
            rounded up to even, and must be divisible by 2 * groups. The other C - C' channels pass
            through unchanged after the GSF channels (step 1).
        zero_init_gate: initialise the gate conv weight and bias to zero (GSM does; GSF does not), so the
            gate starts at tanh(0) = 0; None: GSF's own start (not zeroed). Ignored for the fixed gates.
        The defaults and valid values of these knobs are those of `gsf.ops._knobs.GSFKnobs`.
        layer_name: where the module sits in the backbone, only used in error messages.
        path: how a learned gate is computed; the same function either way (held equal to the reference in
            outputs and gradients by tests/ops). "auto": `path_for_device`, read at each call
            ("fused" on CPU in eager mode, "composed" under `torch.compile` and on other devices); "fused":
            the hand-written autograd Functions; "composed": standard operators. Tracing
            (`torch.jit.trace`, fvcore) and the meta device always take the composed path, which is the only
            one their tools can see into; the fixed gates have only it. Settable afterwards on a whole model with `set_gsf_path`.

    Parameters: 29 * C' + 40 for the paper's configuration (groups=2, spatiotemporal gate, channel
    weighting): BN3d 2C', gate conv 27C' + 2, fusion convs 2 x 19.
    """

    def __init__(self, channels: int, *, groups: int = GSF_DEFAULTS.groups, gate: str = GSF_DEFAULTS.gate,
                 fusion: str = GSF_DEFAULTS.fusion, channel_fraction: float = GSF_DEFAULTS.channel_fraction,
                 zero_init_gate: bool | None = GSF_DEFAULTS.zero_init_gate, layer_name: str = "",
                 path: str = "auto") -> None:
        super().__init__()
        knobs = GSFKnobs(groups=groups, gate=gate, fusion=fusion, channel_fraction=channel_fraction,
                         zero_init_gate=zero_init_gate, layer_name=layer_name)
        check_choice("path", path, GSF_PATHS, layer_name)
        self.path = path
        self.channels = channels
        self.gated_channels = gsf_channels(channels, channel_fraction, groups, layer_name)
        self.groups = groups
        self.gate = gate
        self.fusion = fusion
        self.channel_fraction = channel_fraction
        self.layer_name = layer_name
        cp = self.gated_channels
        if gate in LEARNED_GATES:
            kernel = (3, 3, 3) if gate == "spatiotemporal" else (1, 3, 3)
            # BN3d over (B, C', T, H, W) has the same per-channel statistics as over (B*T, C', 1, H, W),
            # which is how it is called: no transpose of the input is needed.
            self.bn = nn.BatchNorm3d(cp)
            self.conv3D = nn.Conv3d(cp, groups, kernel, padding=(kernel[0] // 2, 1, 1), groups=groups)
            if knobs.gate_starts_at_zero:
                nn.init.zeros_(self.conv3D.weight)
                nn.init.zeros_(self.conv3D.bias)
        if fusion == "channel_weighting":
            for i in range(1, groups + 1):
                setattr(self, f"channel_conv{i}", nn.Conv2d(2, 1, 3, padding=1))

    def extra_repr(self) -> str:
        return (f"{self.channels}, gated_channels={self.gated_channels}, groups={self.groups}, "
                f"gate={self.gate!r}, fusion={self.fusion!r}, path={self.path!r}")

    # -- step 3 -------------------------------------------------------------------------------------
    def _gate_maps(self, x: torch.Tensor, frames: int, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """tanh(Conv3d(ReLU(BN3d(X)))) as (B*T, G, H*W), for the first C' channels X of x (B*T, C, H*W);
        returned with x as passed through `GateTaps` (to be used in its place, see there).

        The grouped Conv3d with G outputs is slow on CPU (oneDNN handles few output channels badly,
        forward and even more backward). It is computed instead, with the same 27 C' multiply-adds per
        output pixel, as one batched matmul giving every tap's contribution, U[n, g, (kt, kh, kw), pixel],
        then the taps are summed with their spatial offsets by `F.fold` (col2im, no arithmetic beyond the
        additions) and with their temporal offsets by two one-frame shifts of a G-channel map.
        BN -> ReLU -> taps is one `GateTaps` call that keeps only x for backward; BN3d over
        (B, C', T, H, W) has the same per-channel statistics as over (B*T, C', H*W). The running
        statistics are updated here, once, as `nn.BatchNorm3d` would.
        """
        n = x.shape[0]
        batch = n // frames
        cp, groups = self.gated_channels, self.groups
        per_group = cp // groups
        weight, bias = self.conv3D.weight, self.conv3D.bias
        kt = weight.shape[2]
        # fold scatters column (kh, kw) of pixel p to p + (kh - 1, kw - 1); a conv gathers from there,
        # so the spatial taps are flipped. Rows of `taps`: (kt, kh, kw); columns: input channels.
        taps = weight.flip(3, 4).reshape(groups, per_group, kt * 9).transpose(1, 2)
        bn = self.bn
        cols, mean, var, x = GateTaps.apply(x, bn.weight, bn.bias, taps, bn.running_mean, bn.running_var,
                                            bn.eps, bn.training, cp)
        if bn.training:
            self._update_running_stats(mean, var, n * h * w)
        taps = F.fold(cols.view(n, groups * kt * 9, h * w), (h, w), 3, padding=1)  # (N, G*kt, H, W)
        if kt == 1:
            pre = taps + bias.view(1, groups, 1, 1)
            return torch.tanh(pre).view(n, groups, h * w), x
        # pre[t] = tap0[t - 1] + tap1[t] + tap2[t + 1] + bias, zero outside the clip.
        taps = taps.view(batch, frames, groups, 3, h * w)
        pre = (taps[:, :, :, 1] + bias.view(1, 1, groups, 1)
               + F.pad(taps[:, :, :, 0], (0, 0, 0, 0, 1, -1))
               + F.pad(taps[:, :, :, 2], (0, 0, 0, 0, -1, 1)))
        return torch.tanh(pre).view(n, groups, h * w), x

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        """The update `nn.BatchNorm3d` makes in training mode, from the batch mean and biased variance."""
        bn = self.bn
        bn.num_batches_tracked.add_(1)
        factor = 1.0 / bn.num_batches_tracked if bn.momentum is None else bn.momentum
        unbiased = var * (count / max(count - 1, 1))
        bn.running_mean.mul_(1 - factor).add_(mean.to(bn.running_mean.dtype) * factor)
        bn.running_var.mul_(1 - factor).add_(unbiased.to(bn.running_var.dtype) * factor)

    # -- step 5 -------------------------------------------------------------------------------------
    def _fusion_weights(self, p: torch.Tensor, q: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """w = sigmoid(conv over the (channel, time) image [p, q]); p, q and w are (B, T, C')."""
        groups = self.groups
        per_group = self.gated_channels // groups
        p = p.view(batch, frames, groups, per_group)
        q = q.view(batch, frames, groups, per_group)
        # All groups' 2->1 convs as one grouped conv over (B, 2G, C'/G, T): channels [p1, q1, p2, q2, ...].
        z = torch.stack([p, q], dim=3).permute(0, 2, 3, 4, 1).reshape(batch, 2 * groups, per_group, frames)
        convs = [getattr(self, f"channel_conv{i}") for i in range(1, groups + 1)]
        weight = torch.cat([conv.weight for conv in convs], dim=0)
        bias = torch.cat([conv.bias for conv in convs], dim=0)
        wgt = torch.sigmoid(F.conv2d(z, weight, bias, padding=1, groups=groups))  # (B, G, C'/G, T)
        return wgt.permute(0, 3, 1, 2).reshape(batch, frames, groups * per_group)

    def resolved_path(self, device_type: str) -> str:
        """The path a call on a tensor of this device type takes: "fused" or "composed"."""
        # The fused autograd Functions are opaque to tracers (fvcore would count none of their
        # multiply-adds) and have no meta-device kernels, so tracing and shape checks take the composed path,
        # which computes the same function from standard operators.
        if self.gate not in LEARNED_GATES or torch.jit.is_tracing() or device_type == "meta":
            return "composed"
        if self.path != "auto":
            return self.path
        return path_for_device(device_type, compiled=torch.compiler.is_compiling())

    def forward_frames(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        if self.resolved_path(x.device.type) == "fused":
            return self._forward_learned_gate(x, num_frames)
        return self._forward_composed(x, num_frames)

    def _composed_gate_maps(self, X: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """Step 3 from standard operators: tanh(Conv3d(ReLU(BN3d(X)))) as (B, T, G, H*W)."""
        n, cp, h, w = X.shape
        # BN3d over (B*T, C', 1, H, W) has the statistics of BN3d over (B, C', T, H, W) and keeps X's own
        # layout: batch norm's backward on a transposed input returns a layout other than the one its meta
        # kernel announces, which breaks AOT autograd's graph of the backward (a `view` of the gradient).
        Z = torch.relu(self.bn(X.unsqueeze(2))).reshape(batch, frames, cp, h, w)
        conv = self.conv3D
        if torch.jit.is_tracing() or X.device.type == "meta":
            # the convolution itself, as the complexity counters (fvcore's trace, gsf.complexity on the meta
            # device) price it: docs/gsf-operator.md section 3
            pre = F.conv3d(Z.transpose(1, 2), conv.weight, conv.bias, padding=conv.padding, groups=self.groups)
            return torch.tanh(pre).transpose(1, 2).reshape(batch, frames, self.groups, h * w)
        return torch.tanh(_grouped_conv3d_as_taps(Z, conv.weight, conv.bias, conv.padding, self.groups))

    def _forward_learned_gate(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Steps 1-7 with a learned gate: `GateTaps` and `ShiftFuse` do the full-size work and save only X
        and the small gate and fusion maps for backward (the rest is recomputed there)."""
        n, c, h, w = x.shape
        channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        # The fused functions index (N, C, H*W) views; another layout costs one explicit copy each way.
        x = x.contiguous()
        cp, groups = self.gated_channels, self.groups
        gate, x = self._gate_maps(x.view(n, c, h * w), num_frames, h, w)
        if self.fusion == "channel_weighting":
            convs = [getattr(self, f"channel_conv{i}") for i in range(1, groups + 1)]
            fusion_weight = torch.cat([conv.weight for conv in convs], dim=0)
            fusion_bias = torch.cat([conv.bias for conv in convs], dim=0)
        else:
            fusion_weight = fusion_bias = None
        out = ShiftFuse.apply(x, gate, fusion_weight, fusion_bias, num_frames, cp, groups,
                              self.fusion).view(n, c, h, w)
        return out.contiguous(memory_format=torch.channels_last) if channels_last else out

    def internal_maps(self, x: torch.Tensor, num_frames: int | None = None) -> dict[str, torch.Tensor]:
        """What the module routes on `x` (B*T, C, H, W): ``"gate"``, the gate maps G of step 3 as
        (B, T, G, H*W), for a learned gate; ``"fusion_weight"``, the fusion weights w of step 5 as
        (B, T, C'), for channel weighting. Computed by the composed path (the same function as either path's
        forward); the output itself is discarded. In training mode BN3d updates its running statistics as in
        any forward: call it in eval mode to leave the module as it was."""
        frames = resolve_num_frames(x.shape[0], num_frames if num_frames is not None else self.num_frames,
                                    owner=type(self).__name__)
        maps: dict[str, torch.Tensor] = {}
        self._forward_composed(x, frames, maps)
        return maps

    def _forward_composed(self, x: torch.Tensor, num_frames: int,
                          maps: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Steps 1-7 from standard operators, with no Python loop over pieces: the path of the fixed gates, of
        every gate when traced, and of `path="composed"` (the default off CPU, for `torch.compile`). With
        `maps`, the gate maps and fusion weights are put there too (:meth:`internal_maps`)."""
        n, c, h, w = x.shape
        hw = h * w
        frames = num_frames
        batch = n // frames
        cp, groups = self.gated_channels, self.groups
        # Channels as shift blocks: even blocks receive the next frame, odd blocks the previous one. With
        # G >= 2 a block is a group; with G = 1 the two halves of the single group. Every tensor below is
        # kept as one part per direction, each (B, T, blocks/2, block, H*W). Parts are taken with
        # split/unbind, whose backward is one cat/stack, not a zero-filled scatter per part.
        blocks = max(groups, 2)
        block = cp // blocks
        X, bypass = x.split([cp, c - cp], dim=1) if cp < c else (x, None)
        Xs = X.reshape(batch, frames, blocks // 2, 2, block, hw).unbind(3)

        if self.gate in LEARNED_GATES:
            gate = self._composed_gate_maps(X, batch, frames)  # (B, T, G, H*W)
            if maps is not None:
                maps["gate"] = gate
            if groups == 1:  # one gate map for both directions
                gates = (gate.view(batch, frames, 1, 1, hw),) * 2
            else:  # group g is shift block g: even groups receive the next frame, odd ones the previous
                gates = gate.view(batch, frames, groups // 2, 2, 1, hw).unbind(3)
            Y = [gates[d] * Xs[d] for d in (0, 1)]
            R = [Xs[d] - Y[d] for d in (0, 1)]
        elif self.gate == "plus_one":
            Y = list(Xs)
            R = [torch.zeros_like(Xs[d]) for d in (0, 1)]
        elif self.gate == "minus_one":
            Y = [-Xs[d] for d in (0, 1)]
            R = [Xs[d] + Xs[d] for d in (0, 1)]
        else:
            Y = list(Xs)
            R = list(Xs)

        # Step 4: F.pad crops one frame at one end and zero-pads the other in one op, whose backward is
        # the same kind of op.
        shifted = (F.pad(Y[0], (0, 0, 0, 0, 0, 0, -1, 1)),   # Y'[t] = Y[t + 1]
                   F.pad(Y[1], (0, 0, 0, 0, 0, 0, 1, -1)))   # Y'[t] = Y[t - 1]

        if self.fusion == "channel_weighting":
            p = torch.stack([shifted[d].mean(dim=-1) for d in (0, 1)], dim=3)  # (B, T, blocks/2, 2, block)
            q = torch.stack([R[d].mean(dim=-1) for d in (0, 1)], dim=3)
            # Under autocast the fusion conv gives bf16 weights while a float32 input keeps R in float32;
            # lerp needs one dtype.
            wgt = self._fusion_weights(p, q, batch, frames).to(R[0].dtype)
            if maps is not None:
                maps["fusion_weight"] = wgt
            wgt = wgt.view(batch, frames, blocks // 2, 2, block, 1)
            wgts = wgt.unbind(3)
            parts = [torch.lerp(R[d], shifted[d], wgts[d]) for d in (0, 1)]
        elif self.fusion == "sum":
            parts = [shifted[d] + R[d] for d in (0, 1)]
        else:
            parts = [(shifted[d] + R[d]) * 0.5 for d in (0, 1)]

        # Step 6 (in each group, output channel 2j + k is group channel k * C'/(2G) + j) and step 7 folded
        # into one copy: each group is passed to `cat` as an interleaved view.
        if groups == 1:
            out = torch.stack([part.view(n, block, hw) for part in parts], dim=2).reshape(n, cp, h, w)
            return torch.cat([out, bypass], dim=1) if bypass is not None else out
        half = block // 2
        per_direction = [part.unbind(2) for part in parts]
        pieces = [per_direction[i % 2][i // 2].reshape(n, 2, half, hw).transpose(1, 2) for i in range(groups)]
        if bypass is None or (c - cp) % 2 == 0:
            if bypass is not None:
                pieces.append(bypass.reshape(n, (c - cp) // 2, 2, hw))
            return torch.cat(pieces, dim=1).reshape(n, c, h, w)
        out = torch.cat(pieces, dim=1).reshape(n, cp, h, w)
        return torch.cat([out, bypass], dim=1)


class GateShift(GateShiftFuse):
    """Gate-Shift Module (GSM, CVPR 2020; docs/gsf-operator.md section 1, "Relatives"): GSF with fusion by plain sum,
    O = Y' + R, and the gate conv initialised to zero, so the module starts as the identity.

    Args: as `GateShiftFuse`, without `fusion` (always "sum"); `zero_init_gate` None (the default) zeroes the
    gate conv. Defaults and valid values: `gsf.ops._knobs.GSMKnobs`.
    """

    def __init__(self, channels: int, *, groups: int = GSM_DEFAULTS.groups, gate: str = GSM_DEFAULTS.gate,
                 channel_fraction: float = GSM_DEFAULTS.channel_fraction,
                 zero_init_gate: bool | None = GSM_DEFAULTS.zero_init_gate, layer_name: str = "",
                 path: str = "auto") -> None:
        start = GSMKnobs(groups=groups, gate=gate, channel_fraction=channel_fraction, zero_init_gate=zero_init_gate,
                         layer_name=layer_name).gate_starts_at_zero
        super().__init__(channels, groups=groups, gate=gate, fusion="sum", channel_fraction=channel_fraction,
                         zero_init_gate=start, layer_name=layer_name, path=path)


def set_gsf_path(model: nn.Module, path: str) -> int:
    """Set `path` ("auto", "fused" or "composed") on every `GateShiftFuse` / `GateShift` inside `model`
    (itself included); return how many. The knob is per module: there is no global switch."""
    check_choice("path", path, GSF_PATHS)
    modules = [module for module in model.modules() if isinstance(module, GateShiftFuse)]
    for module in modules:
        module.path = path
    return len(modules)
