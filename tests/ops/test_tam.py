"""TemporalAdaptive (TAM) against a plain transcription of the release's equations (docs/temporal-modules.md,
"TAM"), written here from them: the release's state-dict keys, outputs, every gradient and the BatchNorm
running statistics, in float64, train and eval."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from gsf.errors import GSFConfigError
from gsf.ops import FixedLengthTemporalModule, TemporalAdaptive, make_temporal_module

MOMENTUM, EPS = 0.1, 1e-5
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def official_state_dict(channels, frames, kernel=3, *, alpha=2, beta=4, seed=0):
    """A state dict of the release's TAM(channels, n_segment=frames, kernel_size=kernel), with random values
    (BN statistics included), by key and shape as the release names them."""
    g = torch.Generator().manual_seed(seed)
    hidden, reduced = alpha * frames, channels // beta

    def rand(*shape, low=-0.5, high=0.5):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) * (high - low) + low)

    def bn(prefix, width):
        return {f"{prefix}.weight": rand(width, low=0.5, high=1.5), f"{prefix}.bias": rand(width),
                f"{prefix}.running_mean": rand(width), f"{prefix}.running_var": rand(width, low=0.5, high=2.0),
                f"{prefix}.num_batches_tracked": torch.tensor(3)}

    return {"G.0.weight": rand(hidden, frames), **bn("G.1", hidden), "G.3.weight": rand(kernel, hidden),
            "L.0.weight": rand(reduced, channels, kernel), **bn("L.1", reduced), "L.3.weight": rand(channels, reduced, 1)}


def _batch_norm(v, state, prefix, dims, training):
    """BatchNorm over `dims` of v (channels on axis 1), as nn.BatchNorm1d; returns (out, new running stats)."""
    shape = [1] * v.dim()
    shape[1] = -1
    if training:
        count = math.prod(v.shape[d] for d in dims)
        mean = v.mean(dim=dims)
        var = v.var(dim=dims, unbiased=False)
        running = {f"{prefix}.running_mean": (1 - MOMENTUM) * state[f"{prefix}.running_mean"] + MOMENTUM * mean.detach(),
                   f"{prefix}.running_var": (1 - MOMENTUM) * state[f"{prefix}.running_var"]
                   + MOMENTUM * var.detach() * count / (count - 1)}
    else:
        mean, var = state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]
        running = {}
    out = (v - mean.view(shape)) / torch.sqrt(var.view(shape) + EPS)
    return out * state[f"{prefix}.weight"].view(shape) + state[f"{prefix}.bias"].view(shape), running


def _conv1d_taps(signal, weight):
    """Conv1d over time of (B, C_in, T) with weight (C_out, C_in, K), zero padding K // 2, no bias."""
    k = weight.shape[2]
    t = signal.shape[2]
    padded = F.pad(signal, (k // 2, k // 2))
    return sum(torch.einsum("oc,bct->bot", weight[:, :, j], padded[:, :, j:j + t]) for j in range(k))


def reference_tam(x, frames, state, training):
    """The sheet's steps 1-4, one line each: returns (output, new BN running statistics)."""
    n, c, h, w = x.shape
    b = n // frames
    kernel = state["G.3.weight"].shape[0]
    X = x.reshape(b, frames, c, h, w).permute(0, 2, 1, 3, 4)  # (B, C, T, H, W)
    s = X.mean(dim=(3, 4))  # step 1: one descriptor (B, C, T)
    hidden, run_g = _batch_norm(s.reshape(b * c, frames) @ state["G.0.weight"].T, state, "G.1", (0,), training)
    taps = torch.softmax(torch.relu(hidden) @ state["G.3.weight"].T, dim=-1).view(b, c, kernel)  # step 2
    local, run_l = _batch_norm(_conv1d_taps(s, state["L.0.weight"]), state, "L.1", (0, 2), training)
    importance = torch.sigmoid(torch.einsum("cr,brt->bct", state["L.3.weight"][:, :, 0], torch.relu(local)))
    Y = X * importance[..., None, None]  # step 4: importance first...
    out = []
    for t in range(frames):  # ...then Z[t] = sum_k w[k] Y[t + k - K // 2], zero outside the clip
        terms = [taps[:, :, k, None, None] * Y[:, :, t + k - kernel // 2]
                 for k in range(kernel) if 0 <= t + k - kernel // 2 < frames]
        out.append(sum(terms))
    Z = torch.stack(out, dim=2)
    return Z.permute(0, 2, 1, 3, 4).reshape(n, c, h, w), {**run_g, **run_l}


CASES = list(itertools.product((8, 12), (3, 4), (3, 5), (True, False)))  # channels, frames, kernel, training


@pytest.mark.parametrize(("channels", "frames", "kernel", "training"), CASES)
def test_outputs_gradients_and_running_statistics_equal_the_reference(channels, frames, kernel, training):
    state = official_state_dict(channels, frames, kernel)
    module = TemporalAdaptive(channels, num_frames=frames, kernel_size=kernel).double()
    module.load_state_dict(state, strict=True)
    module.train(training)
    x = torch.randn(2 * frames, channels, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x_module = x.clone().requires_grad_(True)
    out = module(x_module)
    ref_state = {k: v.clone().requires_grad_(v.is_floating_point() and "running" not in k) for k, v in state.items()}
    x_ref = x.clone().requires_grad_(True)
    ref, running = reference_tam(x_ref, frames, ref_state, training)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)

    upstream = torch.randn_like(out)
    params = dict(module.named_parameters())
    grads = torch.autograd.grad(out, [x_module, *params.values()], upstream)
    ref_grads = torch.autograd.grad(ref, [x_ref, *(ref_state[k] for k in params)], upstream)
    assert set(params) == {"G.0.weight", "G.1.weight", "G.1.bias", "G.3.weight", "L.0.weight", "L.1.weight",
                           "L.1.bias", "L.3.weight"}
    for name, got, want in zip(["input", *params], grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")

    buffers = dict(module.named_buffers())
    for key in ("G.1.running_mean", "G.1.running_var", "L.1.running_mean", "L.1.running_var"):
        torch.testing.assert_close(buffers[key], running.get(key, state[key]), rtol=1e-12, atol=1e-14, msg=key)
    assert int(buffers["G.1.num_batches_tracked"]) == 3 + training


def test_state_dict_keys_and_shapes_are_the_releases():
    module = TemporalAdaptive(64, num_frames=8)
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    expected = {k: tuple(v.shape) for k, v in official_state_dict(64, 8).items()}
    assert shapes == expected
    assert shapes["G.0.weight"] == (16, 8) and shapes["G.3.weight"] == (3, 16)
    assert shapes["L.0.weight"] == (16, 64, 3) and shapes["L.3.weight"] == (64, 16, 1)
    assert len(shapes) == 14


@pytest.mark.parametrize(("channels", "frames"), [(64, 8), (128, 8), (64, 16), (512, 16)])
def test_parameter_count_is_c_squared_plus_c_over_2_plus_2t_squared_plus_10t(channels, frames):
    module = TemporalAdaptive(channels, num_frames=frames)
    expected = channels ** 2 + channels // 2 + 2 * frames ** 2 + 10 * frames
    assert sum(p.numel() for p in module.parameters()) == expected
    if (channels, frames) == (64, 8):
        assert expected == 4336


def test_initialisation_is_pytorchs_default():
    torch.manual_seed(0)
    module = TemporalAdaptive(64, num_frames=8)
    fan_in = {"G.0.weight": 8, "G.3.weight": 16, "L.0.weight": 3 * 64, "L.3.weight": 16}
    for key, fan in fan_in.items():
        weight = module.state_dict()[key]
        bound = 1 / math.sqrt(fan)
        assert weight.abs().max() <= bound and weight.abs().max() > 0.8 * bound, key  # U(-b, b), kaiming a=sqrt(5)
    for bn in (module.G[1], module.L[1]):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.bias, torch.zeros_like(bn.bias))
        assert bn.momentum == MOMENTUM and bn.eps == EPS


def test_the_kernel_taps_read_the_previous_the_same_and_the_next_frame():
    # Constant importance and a one-hot kernel on tap 0 make the output frame t equal 0.5 * input frame t - 1.
    module = TemporalAdaptive(8, num_frames=4).double().eval()
    with torch.no_grad():
        module.L[3].weight.zero_()  # importance sigmoid(0) = 0.5
        module.G[0].weight.zero_()
        module.G[1].bias.fill_(1.0)  # hidden units all 1 after BN (running mean 0, var 1) and ReLU
        module.G[3].weight.zero_()
        module.G[3].weight[0].fill_(100.0)  # softmax one-hot on tap 0
    x = torch.arange(1.0, 5.0, dtype=torch.float64).view(4, 1, 1, 1).expand(4, 8, 2, 2)
    out = module(x)[:, 0, 0, 0]
    assert out.tolist() == pytest.approx([0.0, 0.5, 1.0, 1.5])


def test_clip_length_is_architecture():
    module = TemporalAdaptive(16, num_frames=8, layer_name="layer2.1.temporal_before_conv2")
    assert isinstance(module, FixedLengthTemporalModule) and module.clip_length == 8
    assert module(torch.randn(16, 16, 2, 2)).shape == (16, 16, 2, 2)  # num_frames defaults to the built T
    with pytest.raises(GSFConfigError, match=r"TemporalAdaptive at 'layer2.1.temporal_before_conv2' is built for "
                                             r"clips of T=8 .* given clips of T=16"):
        module(torch.randn(16, 16, 2, 2), num_frames=16)
    with pytest.raises(GSFConfigError, match="T=8 .* T=4"):
        module(torch.randn(2, 4, 16, 2, 2))
    with pytest.raises(RuntimeError, match="size mismatch"):
        TemporalAdaptive(16, num_frames=16).load_state_dict(module.state_dict())


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"kernel_size": 4}, "tam_kernel_size must be an odd positive int, got 4"),
    ({"global_expansion": 0}, "tam_global_expansion must be a positive int, got 0"),
    ({"local_reduction": 32}, "leave the local branch no channel"),
    ({"num_frames": 0}, "num_frames .* must be a positive int, got 0"),
])
def test_bad_knobs_name_the_layer_and_the_value(kwargs, fragment):
    with pytest.raises(GSFConfigError, match=fragment) as err:
        TemporalAdaptive(16, **{"num_frames": 8, **kwargs}, layer_name="layer1.0")
    assert "layer1.0" in str(err.value)


def test_factory_builds_it_with_the_registry_knobs():
    module = make_temporal_module("tam", 32, num_frames=4, layer_name="l", tam_kernel_size=5,
                                  tam_global_expansion=3, tam_local_reduction=8)
    assert isinstance(module, TemporalAdaptive)
    assert (module.kernel_size, module.global_expansion, module.local_reduction) == (5, 3, 8)
    assert module.G[0].weight.shape == (12, 4) and module.L[0].weight.shape == (4, 32, 5)
    with pytest.raises(GSFConfigError, match="pass num_frames=T"):
        make_temporal_module("tam", 32, layer_name="l")
