"""Hand-written autograd for the learned-gate GSF (docs/gsf-operator.md section 1, steps 3-7), saving little.

Two `torch.autograd.Function`s carry the full-size work of `GateShiftFuse` with a learned gate:

- `GateTaps`: step 3 up to the gate conv, ReLU(BN3d(X)) followed by the tap matmul of the conv (see
  `GateShiftFuse._gate_maps`). It saves only X and per-channel vectors; ReLU(BN(X)) is recomputed in
  backward instead of being kept alive between forward and backward. Batch statistics are computed here
  and returned, so the caller updates the BN running statistics exactly once, in forward. x passes through
  it to `ShiftFuse`, so backward adds the BN gradient into ShiftFuse's gradient for x in place.
- `ShiftFuse`: steps 3-7 after the gate map G is known: Y = G * X, R = X - Y, the one-frame shift, the
  channel-weighting fusion (spatial means, the per-group 3x3 conv, sigmoid) and the interleave, writing
  straight into the output (bypass channels included). It saves X, G and the small fusion tensors; the
  gated, residual and shifted parts are recomputed in backward.

Large maps are processed in pieces of about `_CHUNK_BYTES` (a few samples, or a band of pixels), so the
temporaries of each piece are still in cache when read back and none is allocated at full size: on CPU,
each fresh full-size tensor costs page faults and a trip to memory, which is most of what a module that
does little arithmetic per element pays.

Everything is expressed on views of (B, T, G/2, 2, k, h, H*W) tensors, where axis 3 is the shift
direction (0: receives the next frame, 1: the previous) and (k, h) split a shift block so that the
per-group channel interleave of step 6 is a transpose of the output view, not a copy. Only the
gradient formulas are hand-written; every one of them is checked against autograd of the plain
reference by the tests (outputs and gradients for every knob, and `gradcheck` in double).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class GateTaps(torch.autograd.Function):
    """cols[n, g, tap, p] = sum_c taps[g, tap, c] * ReLU(BN(X))[n, g, c, p] for X = x[:, :C'] (N, C', P).

    Inputs: x (N, C, P), whose first `gated` = C' channels are X, seen as (N*G, C'/G, P); BN weight and bias
    (C',); taps (G, K, C'/G); the running mean and var, used when `training` is False; eps. Outputs: cols
    (N*G, K, P); the batch mean and biased variance (C',) (not differentiable; the running ones when not
    training); and x itself, passed through for the caller's `ShiftFuse`. Routing x through here gives x
    one consumer: backward adds the BN gradient into the gradient `ShiftFuse` returned for x, in place,
    instead of autograd allocating a third full-size tensor to sum the two.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, taps, running_mean, running_var, eps: float, training: bool, gated: int):
        X = x if gated == x.shape[1] else x[:, :gated]
        n, cp, pixels = X.shape
        groups, kernel, per_group = taps.shape
        pieces = _pieces(n, cp * pixels * X.element_size())
        if training:
            mean, var = _batch_statistics(X, pieces)
        else:
            mean, var = running_mean.clone(), running_var.clone()
        invstd = torch.rsqrt(var + eps)
        # Given the statistics ReLU(BN(X)) is per sample: it is made a few samples at a time, so each piece
        # is read by the matmul while still in cache and no full-size temporary is allocated.
        cols = torch.empty(n * groups, kernel, pixels, dtype=X.dtype, device=X.device)
        taps_n = _taps_per_sample(taps, pieces[0].stop, X.dtype)
        for piece in pieces:
            z = _bn_relu(X[piece], weight, bias, mean, var, eps)
            start, part = piece.start, z.shape[0]
            torch.bmm(taps_n[:part * groups], z.reshape(part * groups, per_group, pixels),
                      out=cols[start * groups:(start + part) * groups])
        ctx.save_for_backward(x, weight, bias, taps, mean, var, invstd)
        ctx.eps, ctx.training, ctx.gated = eps, training, gated
        ctx.mark_non_differentiable(mean, var)
        return cols, mean, var, x

    @staticmethod
    def backward(ctx, grad_cols, _grad_mean, _grad_var, grad_x):
        x, weight, bias, taps, mean, var, invstd = ctx.saved_tensors
        X = x if ctx.gated == x.shape[1] else x[:, :ctx.gated]
        n, cp, pixels = X.shape
        groups, kernel, per_group = taps.shape
        need_x, need_w, need_b, need_taps = ctx.needs_input_grad[:4]
        need_bn = need_x or need_w or need_b
        dtype, device = X.dtype, X.device
        acc = torch.float64 if dtype == torch.float64 else torch.float32
        grad_cols = grad_cols.to(dtype)
        # A few samples at a time: ReLU(BN(X)) is recomputed per piece and used while in cache; the only
        # full-size tensor made is dL/dY of the BN (the gated channels).
        pieces = _pieces(n, cp * pixels * X.element_size())
        taps_t = _taps_per_sample(taps, pieces[0].stop, dtype).transpose(1, 2)
        grad_taps = torch.zeros(groups, kernel, per_group, dtype=acc, device=device) if need_taps else None
        grad_y = torch.empty(n, cp, pixels, dtype=dtype, device=device) if need_bn else None
        sum_dy = torch.zeros(cp, dtype=acc, device=device)
        sum_dy_xmu = torch.zeros(cp, dtype=acc, device=device)
        mean_col = mean.view(1, cp, 1)
        for piece in pieces:
            start, part = piece.start, piece.stop - piece.start
            Xc = X[piece]
            zc = _bn_relu(Xc, weight, bias, mean, var, ctx.eps)
            z3 = zc.view(part * groups, per_group, pixels)
            gc = grad_cols[start * groups:(start + part) * groups]
            if need_taps:
                grad_taps += torch.bmm(gc, z3.transpose(1, 2)).view(part, groups, kernel, per_group).sum(0)
            if need_bn:
                dyc = grad_y[piece]
                torch.bmm(taps_t[:part * groups], gc, out=dyc.view(part * groups, per_group, pixels))
                # ReLU backward, in place (the kernel of `threshold_backward`, faster than masked_fill_)
                torch.ops.aten.threshold_backward.grad_input(dyc, zc, 0, grad_input=dyc)
                sum_dy += dyc.sum(-1, dtype=acc).sum(0)
                sum_dy_xmu += (dyc * (Xc - mean_col)).sum(-1, dtype=acc).sum(0)
        if grad_taps is not None:
            grad_taps = grad_taps.to(taps.dtype)
        grad_w = grad_b = None
        if need_w:
            grad_w = (sum_dy_xmu * invstd.to(acc)).to(weight.dtype)
        if need_b:
            grad_b = sum_dy.to(bias.dtype)
        if need_x:
            # The pass-through gradient is ShiftFuse's own fresh dL/dx (its only consumer), added to in place.
            grad_x = grad_x.contiguous()
            # BN backward: dX = w * invstd * (dY - mean(dY) - (X - mean) * invstd^2 * mean(dY * (X - mean)))
            # with batch statistics; dX = w * invstd * dY with fixed (running) ones.
            scale = (weight.to(acc) * invstd.to(acc)).view(1, cp, 1)
            count = n * pixels
            shift = (sum_dy / count).view(1, cp, 1)
            slope = (sum_dy_xmu / count * invstd.to(acc).square()).view(1, cp, 1)
            for piece in pieces:
                dyc = grad_y[piece]
                if ctx.training:
                    dyc.sub_(shift).addcmul_(X[piece] - mean_col, slope, value=-1)
                grad_x[piece, :cp].add_(dyc.mul_(scale))
        else:
            grad_x = None
        return grad_x, grad_w, grad_b, grad_taps, None, None, None, None, None


_CHUNK_BYTES = 4 << 20  # about the size of one frame's widest ResNet-50 feature map; fits in L3 caches


def _pieces(length: int, item_bytes: int) -> list[slice]:
    """``range(length)`` cut into consecutive slices of about `_CHUNK_BYTES` each (at least one item)."""
    step = max(1, _CHUNK_BYTES // max(1, item_bytes))
    return [slice(start, min(start + step, length)) for start in range(0, length, step)]


def _batch_statistics(X, pieces: list[slice]):
    """Per-channel mean and biased variance of X (N, C', P) over (N, P), in two passes (the mean, then the
    squared deviations from it, a few samples at a time). On CPU this is faster than
    `var_mean` over (N, P) or `native_batch_norm`, and as accurate (no E[x^2] - E[x]^2 cancellation)."""
    n, cp, pixels = X.shape
    acc = torch.float64 if X.dtype == torch.float64 else torch.float32
    mean = X.mean(-1, dtype=acc).mean(0)
    centre = mean.view(1, cp, 1)
    squares = torch.zeros_like(mean)
    for piece in pieces:
        squares += (X[piece] - centre).square_().sum(-1).sum(0)
    return mean, squares / (n * pixels)


def _taps_per_sample(taps, n: int, dtype):
    """(G, K, C'/G) taps repeated for n samples as the (n*G, K, C'/G) batch of a bmm."""
    groups, kernel, per_group = taps.shape
    return taps.to(dtype).unsqueeze(0).expand(n, groups, kernel, per_group).reshape(n * groups, kernel, per_group)


def _bn_relu(X, weight, bias, mean, var, eps):
    """ReLU(BN(X)) with given statistics: the channel-wise inference kernel of batch norm (faster on CPU
    than a broadcast multiply-add; it takes low-precision X with float32 statistics), then a clamp."""
    return torch.batch_norm(X, weight, bias, mean, var, False, 0.0, eps, torch.backends.cudnn.enabled).clamp_min_(0)


# -- ShiftFuse ---------------------------------------------------------------------------------------

def _directions(frames: int):
    """Per direction d: (destination frames, source frames, edge frame that receives zeros)."""
    return ((slice(0, frames - 1), slice(1, frames), frames - 1),   # d = 0: Y'[t] = Y[t + 1]
            (slice(1, frames), slice(0, frames - 1), 0))            # d = 1: Y'[t] = Y[t - 1]


class _Layout:
    """Shapes of the 7-d views (B, T, G/2, 2, k, h, P) for one call; see the module docstring."""

    def __init__(self, n: int, channels: int, pixels: int, frames: int, gated: int, groups: int):
        self.n, self.channels, self.pixels, self.frames = n, channels, pixels, frames
        self.batch = n // frames
        self.gated, self.groups = gated, groups
        self.blocks = max(groups, 2)
        self.block = gated // self.blocks
        # groups >= 2: a block is a group, interleaved as (2, half); groups == 1: the single group's
        # interleave pairs its two blocks, so a block is (1, block).
        self.k, self.h = (2, self.block // 2) if groups > 1 else (1, self.block)
        self.shape = (self.batch, frames, self.blocks // 2, 2, self.k, self.h, pixels)

    def source(self, t: torch.Tensor) -> torch.Tensor:
        """The gated channels of a (N, C, P) tensor in source channel order."""
        return t[:, :self.gated].view(self.shape)

    def target(self, t: torch.Tensor) -> torch.Tensor:
        """The gated channels of a (N, C, P) tensor in output order (step 6), indexed like `source`."""
        b, frames, n, pixels = self.batch, self.frames, self.n, self.pixels
        gated = t[:, :self.gated]
        if self.groups == 1:
            # output channel 2j + k <- channel k * C'/2 + j, and block d is k = d.
            return gated.view(b, frames, self.h, 2, pixels).transpose(2, 3).unsqueeze(2).unsqueeze(4)
        per_group = self.gated // self.groups
        # in group i: output channel 2j + k <- group channel k * half + j.
        view = gated.view(n, self.groups, per_group // 2, 2, pixels).transpose(2, 3)  # (N, G, 2, half, P)
        return view.reshape(b, frames, self.blocks // 2, 2, self.k, self.h, pixels)

    def gate(self, g: torch.Tensor) -> torch.Tensor:
        """(N, G, P) gate maps broadcast against `source`."""
        if self.groups == 1:
            return g.view(self.batch, self.frames, 1, 1, 1, 1, self.pixels)
        return g.view(self.batch, self.frames, self.groups // 2, 2, 1, 1, self.pixels)

    def per_channel(self, v: torch.Tensor) -> torch.Tensor:
        """(B, T, C') per-channel values broadcast against `source`."""
        return v.reshape(self.batch, self.frames, self.blocks // 2, 2, self.k, self.h, 1)


def _shift_means(mean_p: torch.Tensor, frames: int) -> torch.Tensor:
    """Spatial means of Y' from those of Y: shift each direction by one frame (step 4)."""
    out = torch.zeros_like(mean_p)
    for d, (dst, src, _) in enumerate(_directions(frames)):
        out[:, dst, :, d] = mean_p[:, src, :, d]
    return out


def _unshift_means(grad_p: torch.Tensor, frames: int) -> torch.Tensor:
    """Adjoint of `_shift_means`."""
    out = torch.zeros_like(grad_p)
    for d, (dst, src, _) in enumerate(_directions(frames)):
        out[:, src, :, d] = grad_p[:, dst, :, d]
    return out


def _fusion_input(p: torch.Tensor, q: torch.Tensor, lay: _Layout) -> torch.Tensor:
    """(B, T, C') means p, q as the per-group 2-channel (channel, time) images, (B, 2G, C'/G, T)."""
    b, frames, groups = lay.batch, lay.frames, lay.groups
    per_group = lay.gated // groups
    z = torch.stack([p.reshape(b, frames, groups, per_group), q.reshape(b, frames, groups, per_group)], dim=3)
    return z.permute(0, 2, 3, 4, 1).reshape(b, 2 * groups, per_group, frames)


def _fusion_grad_means(grad_z: torch.Tensor, lay: _Layout) -> tuple[torch.Tensor, torch.Tensor]:
    """Adjoint of `_fusion_input`: (B, 2G, C'/G, T) -> grads of p and q, each (B, T, C')."""
    b, frames, groups = lay.batch, lay.frames, lay.groups
    per_group = lay.gated // groups
    g = grad_z.view(b, groups, 2, per_group, frames).permute(0, 4, 1, 3, 2)  # (B, T, G, C'/G, 2)
    return g[..., 0].reshape(b, frames, lay.gated), g[..., 1].reshape(b, frames, lay.gated)


class ShiftFuse(torch.autograd.Function):
    """Steps 3 (after the gate map) to 7: (N, C, P) input x and (N, G, P) gate maps -> (N, C, P) output.

    `fusion` is "channel_weighting" (then `fusion_weight` (G, 2, 3, 3) and `fusion_bias` (G,) are the
    per-group convs, stacked), "sum" or "average".
    """

    @staticmethod
    def forward(ctx, x, g, fusion_weight, fusion_bias, frames: int, gated: int, groups: int, fusion: str):
        n, channels, pixels = x.shape
        lay = _Layout(n, channels, pixels, frames, gated, groups)
        X, G = lay.source(x), lay.gate(g.to(x.dtype))
        out = torch.empty_like(x)
        if gated < channels:
            out[:, gated:] = x[:, gated:]
        O = lay.target(out)
        # Gating and shifting are per pixel, so large maps are done a band of pixels at a time: Y = G * X is
        # made per band (and made again for the output), read back while in cache, and never allocated at
        # full size. Only the spatial means of the fusion need every pixel, and they come first.
        bands = _pieces(pixels, n * gated * x.element_size())
        P = X * G if len(bands) == 1 else None
        w = zin = W = None
        if fusion == "channel_weighting":
            if P is not None:
                mean_p = P.mean(-1)
            else:
                mean_p = sum((X[..., band] * G[..., band]).sum(-1) for band in bands).div_(pixels)
            mean_x = X.mean(-1)
            zin = _fusion_input(_shift_means(mean_p, frames).view(lay.batch, frames, gated),
                                (mean_x - mean_p).view(lay.batch, frames, gated), lay)
            zin = zin.to(fusion_weight.dtype)
            with torch.autocast(x.device.type, enabled=False):  # w in the weights' dtype, as backward expects
                w = torch.sigmoid(F.conv2d(zin, fusion_weight, fusion_bias, padding=1, groups=groups))
            W = lay.per_channel(w.permute(0, 3, 1, 2).to(x.dtype))
        for band in bands:
            Xb, Ob = X[..., band], O[..., band]
            Pb = P if P is not None else Xb * G[..., band]
            if torch.compiler.is_compiling():  # dynamo rejects a strided `out=`; same values, one more pass
                Ob.copy_(Xb - Pb)
            else:
                torch.sub(Xb, Pb, out=Ob)  # R
            for d, (dst, src, edge) in enumerate(_directions(frames)):
                if W is not None:  # O = w * Y' + (1 - w) * R
                    Ob[:, dst, :, d].lerp_(Pb[:, src, :, d], W[:, dst, :, d])
                    Ob[:, edge, :, d].mul_(1 - W[:, edge, :, d])
                else:
                    Ob[:, dst, :, d].add_(Pb[:, src, :, d])
            if fusion == "average":
                Ob.mul_(0.5)
        ctx.save_for_backward(x, g, fusion_weight, w, zin)
        ctx.layout, ctx.fusion = lay, fusion
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, g, fusion_weight, w, zin = ctx.saved_tensors
        lay, fusion = ctx.layout, ctx.fusion
        grad_out = grad_out.contiguous()
        frames, pixels = lay.frames, lay.pixels
        X, G = lay.source(x), lay.gate(g.to(x.dtype))
        dO = lay.target(grad_out)
        grad_x = torch.empty_like(x)
        if lay.gated < lay.channels:
            grad_x[:, lay.gated:] = grad_out[:, lay.gated:]
        dX = lay.source(grad_x)
        grad_fw = grad_fb = None
        # As in forward, the full-size work runs a band of pixels at a time, its temporaries in cache.
        bands = _pieces(pixels, lay.n * lay.gated * x.element_size())
        compiling = torch.compiler.is_compiling()  # dynamo rejects a strided `out=`: same values via copy_

        if fusion == "channel_weighting":
            # O = w * Y' + (1 - w) * R, so dL/dw = sum over pixels of dO * (Y' - R).
            dw = torch.zeros(lay.shape[:-1], dtype=torch.float32 if x.dtype != torch.float64 else x.dtype,
                             device=x.device)
            for band in bands:
                dOb = dO[..., band]
                Pb = X[..., band] * G[..., band]
                for d, (dst, src, _) in enumerate(_directions(frames)):
                    dw[:, dst, :, d] += (dOb[:, dst, :, d] * Pb[:, src, :, d]).sum(-1)
                Rb = X[..., band] - Pb
                dw -= (dOb * Rb).sum(-1)
                del Pb, Rb
            dw = dw.view(lay.batch, frames, lay.gated).permute(0, 2, 1).reshape(w.shape).to(w.dtype)
            dpre = dw * w * (1 - w)
            grad_zin, grad_fw, grad_fb = torch.ops.aten.convolution_backward(
                dpre, zin, fusion_weight, [fusion_weight.shape[0]], [1, 1], [1, 1], [1, 1], False, [0, 0],
                lay.groups, [True, ctx.needs_input_grad[2], ctx.needs_input_grad[3]])
            grad_p, grad_q = _fusion_grad_means(grad_zin, lay)
            shape6 = lay.shape[:-1]
            grad_mean_p = _unshift_means(grad_p.view(shape6), frames) - grad_q.view(shape6)
            grad_mean_x = grad_q.view(shape6)
            # means were taken over the pixels: their grads reach every pixel divided by P.
            gmx = lay.per_channel((grad_mean_x / pixels).to(x.dtype))
            gsum = lay.per_channel((grad_mean_p / pixels).to(x.dtype)) + gmx
            W = lay.per_channel(w.permute(0, 3, 1, 2).to(x.dtype))
            alpha, beta = W, 1 - W
        else:
            a = 1.0 if fusion == "sum" else 0.5

        # dX = F + g * H with F = beta * dO + dmean_x / P and H = alpha * dO shifted back - beta * dO +
        # dmean_p / P (sum / average: alpha = beta = a, no means); dL/dg = sum over a group's channels of H * X.
        grad_g_bands = []
        for band in bands:
            dOb, Fb = dO[..., band], dX[..., band]
            if fusion == "channel_weighting":
                # F = beta * dO + dmean_x / P as a multiply then an add: `addcmul` with two broadcast
                # operands takes an unvectorised loop on CPU.
                if compiling:
                    Fb.copy_(dOb * beta)
                else:
                    torch.mul(dOb, beta, out=Fb)
                Fb.add_(gmx)
                Hb = gsum - Fb
                for d, (dst, src, _) in enumerate(_directions(frames)):
                    Hb[:, src, :, d].addcmul_(dOb[:, dst, :, d], alpha[:, dst, :, d])
            else:
                if compiling:
                    Fb.copy_(dOb * a)
                else:
                    torch.mul(dOb, a, out=Fb)
                Hb = -Fb
                for d, (dst, src, _) in enumerate(_directions(frames)):
                    Hb[:, src, :, d].add_(dOb[:, dst, :, d], alpha=a)
            Gb = G[..., band]
            Fb.addcmul_(Gb, Hb)
            if ctx.needs_input_grad[1]:
                Hb.mul_(X[..., band])
                grad_g_bands.append(Hb.sum((2, 3, 4, 5) if lay.groups == 1 else (4, 5)))
            del Hb
        grad_g = None
        if ctx.needs_input_grad[1]:
            grad_g = torch.cat(grad_g_bands, dim=-1) if len(grad_g_bands) > 1 else grad_g_bands[0]
            grad_g = grad_g.reshape(g.shape).to(g.dtype)
        return grad_x, grad_g, grad_fw, grad_fb, None, None, None, None
