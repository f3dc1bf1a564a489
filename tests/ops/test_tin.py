"""TemporalInterlace (TIN) against a plain transcription of the operator's equations (docs/temporal-modules.md,
"TIN"), written here from them: the release's state-dict keys, outputs and every gradient in float64, and the
true gradient of the linear interpolation (gradcheck), offsets included."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from gsf.errors import GSFConfigError
from gsf.ops import FixedLengthTemporalModule, TemporalInterlace, make_temporal_module
from gsf.ops.temporal_interlace import interpolate_frames


def official_state_dict(channels, frames, shift_div=4, *, seed=0, scale=1.0):
    """A state dict of mmaction2's TemporalInterlace(channels, num_segments=frames, shift_div), random values,
    by key and shape as the release names them (8 tensors, no buffers)."""
    g = torch.Generator().manual_seed(seed)
    folds = channels // shift_div

    def rand(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) - 0.5) * scale

    return {"offset_net.conv.weight": rand(1, folds, 3), "offset_net.conv.bias": rand(1),
            "offset_net.fc1.weight": rand(frames, frames), "offset_net.fc1.bias": rand(frames),
            "offset_net.fc2.weight": rand(2, frames), "offset_net.fc2.bias": rand(2),
            "weight_net.conv.weight": rand(2, folds, 3), "weight_net.conv.bias": rand(2)}


def _conv1d(signal, weight, bias):
    """Conv1d over time of (B, C_in, T) with a (C_out, C_in, 3) weight, zero padding 1, plus bias."""
    t = signal.shape[2]
    padded = F.pad(signal, (1, 1))
    return sum(torch.einsum("oc,bct->bot", weight[:, :, j], padded[:, :, j:j + t]) for j in range(3)) + bias[:, None]


def reference_tin(x, frames, state, shift_div):
    """The sheet's steps 1-7 with explicit loops over clips, quarters and frames."""
    n, c, h, w = x.shape
    b = n // frames
    folds = c // shift_div
    quarter = folds // 4
    X = x.reshape(b, frames, c, h, w)[:, :, :folds]  # step 1: the first F channels
    d = X.mean(dim=(3, 4)).transpose(1, 2)  # step 2: (B, F, T)
    hidden = _conv1d(d, state["offset_net.conv.weight"], state["offset_net.conv.bias"]).view(b, frames)
    hidden = torch.relu(hidden @ state["offset_net.fc1.weight"].T + state["offset_net.fc1.bias"])
    o = 4 * (torch.sigmoid(hidden @ state["offset_net.fc2.weight"].T + state["offset_net.fc2.bias"]) - 0.5)  # step 3
    weights = 2 * torch.sigmoid(_conv1d(d, state["weight_net.conv.weight"], state["weight_net.conv.bias"]))  # step 4
    clips = []
    for clip in range(b):
        out_frames = []
        for t in range(frames):
            parts = []
            for k in range(4):  # step 5: quarter k moves by (o0, o1, -o0, -o1)[k], weighted by w_(k mod 2)
                s = o[clip, k % 2] * (1 if k < 2 else -1)
                whole = math.floor(float(s.detach()))
                f = s - whole  # step 6: linear interpolation at frame t - s, zero outside the clip
                channels = slice(k * quarter, (k + 1) * quarter)
                value = torch.zeros_like(X[clip, 0, channels])
                if 0 <= t - whole < frames:
                    value = value + (1 - f) * X[clip, t - whole, channels]
                if 0 <= t - whole - 1 < frames:
                    value = value + f * X[clip, t - whole - 1, channels]
                parts.append(weights[clip, k % 2, t] * value)  # step 7: weight of the output frame
            out_frames.append(torch.cat(parts + [x.reshape(b, frames, c, h, w)[clip, t, folds:]], dim=0))
        clips.append(torch.stack(out_frames))
    return torch.stack(clips).reshape(n, c, h, w)


# channels, shift_div, frames: with and without copied channels, short and long clips
CASES = [(16, 4, 8), (32, 2, 3), (40, 1, 3), (32, 4, 8)]


@pytest.mark.parametrize(("channels", "shift_div", "frames"), CASES)
@pytest.mark.parametrize("training", [True, False])
def test_outputs_and_every_gradient_equal_the_reference(channels, shift_div, frames, training):
    state = official_state_dict(channels, frames, shift_div, scale=2.0)  # offsets spread over (-2, 2), both signs
    module = TemporalInterlace(channels, num_frames=frames, shift_div=shift_div).double().train(training)
    module.load_state_dict(state, strict=True)
    x = torch.randn(2 * frames, channels, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x_module = x.clone().requires_grad_(True)
    out = module(x_module)
    assert out.dtype == torch.float64
    ref_state = {k: v.clone().requires_grad_(True) for k, v in state.items()}
    x_ref = x.clone().requires_grad_(True)
    ref = reference_tin(x_ref, frames, ref_state, shift_div)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)

    upstream = torch.randn_like(out)
    params = dict(module.named_parameters())
    assert set(params) == set(state)
    grads = torch.autograd.grad(out, [x_module, *params.values()], upstream)
    ref_grads = torch.autograd.grad(ref, [x_ref, *(ref_state[k] for k in params)], upstream)
    for name, got, want in zip(["input", *params], grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")


def test_state_dict_keys_and_shapes_are_the_releases():
    module = TemporalInterlace(64, num_frames=8)
    shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in official_state_dict(64, 8).items()}
    assert shapes["offset_net.conv.weight"] == (1, 16, 3) and shapes["weight_net.conv.weight"] == (2, 16, 3)
    assert list(module.buffers()) == []


@pytest.mark.parametrize(("channels", "frames"), [(64, 8), (256, 8), (64, 16), (2048, 16)])
def test_parameter_count_is_9f_plus_t_squared_plus_3t_plus_5(channels, frames):
    module = TemporalInterlace(channels, num_frames=frames)
    folds = channels // 4
    count = sum(p.numel() for p in module.parameters())
    assert count == 9 * folds + frames ** 2 + 3 * frames + 5
    if (channels, frames) == (64, 8):
        assert count == 237


def test_initialisation_is_the_releases():
    torch.manual_seed(0)
    module = TemporalInterlace(64, num_frames=8)
    assert torch.equal(module.offset_net.fc2.bias, torch.full((2,), 0.5108))
    assert torch.equal(module.weight_net.conv.bias, torch.zeros(2))
    # sigmoid(0.5108) = 0.625: a zero fc2 input gives offsets +0.5 (and, negated, -0.5)
    assert (4 * (torch.sigmoid(module.offset_net.fc2.bias) - 0.5)).tolist() == pytest.approx([0.5, 0.5], abs=1e-4)
    defaults = {"offset_net.conv.weight": 3 * 16, "offset_net.conv.bias": 3 * 16, "offset_net.fc1.weight": 8,
                "offset_net.fc1.bias": 8, "offset_net.fc2.weight": 8, "weight_net.conv.weight": 3 * 16}
    state = module.state_dict()
    for key, fan_in in defaults.items():
        bound = 1 / math.sqrt(fan_in)
        assert 0 < state[key].abs().max() <= bound, key


def test_a_positive_offset_makes_each_frame_read_earlier_frames():
    x = torch.arange(1.0, 6.0, dtype=torch.float64).view(1, 5, 1, 1).expand(1, 5, 2, 1)  # (B, T, G, D)
    offsets = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    y = interpolate_frames(x, offsets)[0, :, :, 0]
    assert y[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # +1: frame t reads t - 1, zero padded at the start
    assert y[:, 1].tolist() == [1.5, 2.5, 3.5, 4.5, 2.5]  # -0.5: halfway to the next frame, zero after the end


def test_interpolation_gradient_is_the_true_gradient_offsets_included():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    offsets = ((torch.rand(2, 4, dtype=torch.float64, generator=g) - 0.5) * 3.8).requires_grad_(True)
    assert torch.autograd.gradcheck(interpolate_frames, (x, offsets))


def test_module_gradient_is_the_true_gradient_of_input_and_parameters():
    torch.manual_seed(0)
    module = TemporalInterlace(16, num_frames=4).double()
    with torch.no_grad():  # larger fc2 weights: offsets that vary with the input, away from integers
        module.offset_net.fc2.weight.mul_(5.0)
    names = [name for name, _ in module.named_parameters()]

    def run(x, *params):
        return functional_call(module, dict(zip(names, params)), (x,))

    x = torch.randn(4, 16, 1, 2, dtype=torch.float64, requires_grad=True)  # one clip: every element is checked
    params = [p.detach().clone().requires_grad_(True) for p in module.parameters()]
    assert torch.autograd.gradcheck(run, (x, *params))


def test_channels_past_the_interlaced_ones_are_copied_and_dtype_kept():
    module = TemporalInterlace(32, num_frames=4, shift_div=4)
    x = torch.randn(8, 32, 3, 3, dtype=torch.float64)
    out = module.double()(x)
    assert out.dtype == torch.float64 and torch.equal(out[:, 8:], x[:, 8:])


def test_clip_length_is_architecture():
    module = TemporalInterlace(16, num_frames=8, layer_name="layer1.0.temporal_before_conv1")
    assert isinstance(module, FixedLengthTemporalModule) and module.clip_length == 8
    with pytest.raises(GSFConfigError, match=r"TemporalInterlace at 'layer1.0.temporal_before_conv1' is built for "
                                             r"clips of T=8 .* given clips of T=16"):
        module(torch.randn(16, 16, 2, 2), num_frames=16)
    with pytest.raises(RuntimeError, match="size mismatch"):
        TemporalInterlace(16, num_frames=16).load_state_dict(module.state_dict())


@pytest.mark.parametrize(("channels", "shift_div", "fragment"), [
    (24, 4, "F=6 interlaced channels, but F must be a positive multiple of 4"),
    (8, 4, "F=2"),
    (16, 0, "tin_shift_div must be a positive int, got 0"),
])
def test_bad_channel_splits_name_the_layer(channels, shift_div, fragment):
    with pytest.raises(GSFConfigError, match=fragment) as err:
        make_temporal_module("tin", channels, num_frames=8, layer_name="layer2.0", tin_shift_div=shift_div)
    assert "layer2.0" in str(err.value)
