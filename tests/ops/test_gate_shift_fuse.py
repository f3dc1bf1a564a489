"""GateShiftFuse / GateShift: the semantics of docs/gsf-operator.md section 1, and equality with the reference."""

import itertools

import pytest
import torch

from gsf.errors import GSFConfigError
from gsf.ops import GSF_PATHS, GateShift, GateShiftFuse, path_for_device, set_gsf_path
from gsf.ops._knobs import LEARNED_GATES, GSFKnobs
from gsf.ops.reference import GateShiftFuseReference, interleave_order


def _clip_input(batch, frames, channels, h=4, w=3, seed=0):
    return torch.randn(batch * frames, channels, h, w, generator=torch.Generator().manual_seed(seed))


def _fixed_gate(module, value):
    """Make the learned gate output a constant tanh(value) everywhere."""
    with torch.no_grad():
        module.conv3D.weight.zero_()
        module.conv3D.bias.fill_(value)


def test_shift_direction_and_zero_padding_at_clip_ends():
    # plus_one gate + sum fusion is a pure shift; group 1 receives the next frame, group 2 the previous.
    m = GateShiftFuse(4, gate="plus_one", fusion="sum")
    frames = 3
    x = torch.arange(1, 2 * frames + 1, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 4, 1, 1).contiguous()
    out = m(x, num_frames=frames).view(2, frames, 4)
    # output channel order after interleave [0, 2, 1, 3]: 0, 1 come from group 1, 2, 3 from group 2.
    clip0 = out[0]
    assert clip0[:, 0].tolist() == [2.0, 3.0, 0.0]  # next frame, last frame zero
    assert clip0[:, 2].tolist() == [0.0, 1.0, 2.0]  # previous frame, first frame zero
    clip1 = out[1]
    assert clip1[:, 1].tolist() == [5.0, 6.0, 0.0]  # no leak across clips
    assert clip1[:, 3].tolist() == [0.0, 4.0, 5.0]


def test_gate_is_in_open_interval_minus_one_one():
    m = GateShiftFuse(8).double()
    with torch.no_grad():
        m.conv3D.weight.mul_(4)
    maps, _ = m._gate_maps(_clip_input(2, 3, 8).double().reshape(6, 8, 12), 3, 4, 3)
    assert maps.shape == (6, 2, 12)
    assert maps.abs().max() < 1.0
    assert maps.abs().max() > 0.5  # the check is not vacuous


def test_interleave_order_for_eight_channels():
    assert interleave_order(8, 2) == [0, 2, 1, 3, 4, 6, 5, 7]
    # "none" gate, sum fusion, T=1: the shift gives zeros, so O = R = X, only reordered.
    m = GateShiftFuse(8, gate="none", fusion="sum")
    x = _clip_input(1, 1, 8)
    assert torch.equal(m(x, num_frames=1), x[:, [0, 2, 1, 3, 4, 6, 5, 7]])


def test_pass_through_channels_are_untouched():
    m = GateShiftFuse(16, channel_fraction=0.5)
    assert m.gated_channels == 8
    x = _clip_input(2, 3, 16)
    out = m(x, num_frames=3)
    assert torch.equal(out[:, 8:], x[:, 8:])
    assert not torch.allclose(out[:, :8], x[:, :8])


def test_channel_fraction_rounds_up_to_even():
    m = GateShiftFuse(12, channel_fraction=0.3, groups=1)  # int(3.6) = 3 -> 4
    assert m.gated_channels == 4


def test_average_fusion_is_half_of_gsm():
    gsm = GateShift(8)
    with torch.no_grad():
        gsm.conv3D.weight.normal_()
        gsm.conv3D.bias.normal_()
    avg = GateShiftFuse(8, fusion="average")
    avg.load_state_dict(gsm.state_dict())
    x = _clip_input(2, 3, 8)
    torch.testing.assert_close(avg(x, num_frames=3), 0.5 * gsm(x, num_frames=3), rtol=0, atol=0)


def test_gsm_starts_as_identity_up_to_interleave():
    gsm = GateShift(8)
    x = _clip_input(2, 3, 8)
    assert torch.equal(gsm(x, num_frames=3), x[:, interleave_order(8, 2)])


def test_plus_one_gate_with_sum_fusion_is_a_pure_temporal_shift():
    m = GateShiftFuse(8, gate="plus_one", fusion="sum")
    frames = 4
    x = _clip_input(2, frames, 8)
    xv = x.view(2, frames, 8, 4, 3)
    expected = torch.zeros_like(xv)
    expected[:, :-1, :4] = xv[:, 1:, :4]
    expected[:, 1:, 4:] = xv[:, :-1, 4:]
    expected = expected.view_as(x)[:, interleave_order(8, 2)]
    assert torch.equal(m(x, num_frames=frames), expected)


def test_eval_output_does_not_depend_on_batch_size():
    m = GateShiftFuse(8).eval()
    with torch.no_grad():
        m.bn.running_mean.normal_()
        m.bn.running_var.uniform_(0.5, 2)
    x = _clip_input(3, 4, 8)
    full = m(x, num_frames=4)
    torch.testing.assert_close(m(x[:4], num_frames=4), full[:4], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(m(x[4:], num_frames=4), full[4:], rtol=1e-6, atol=1e-6)


def test_num_frames_can_change_at_run_time():
    m = GateShiftFuse(8)
    ref = GateShiftFuseReference(8)
    ref.load_state_dict(m.state_dict())
    for frames in (2, 5, 3):
        x = _clip_input(2, frames, 8, seed=frames)
        torch.testing.assert_close(m(x, num_frames=frames), ref(x, num_frames=frames))


def test_parameter_count_is_29_c_prime_plus_40():
    for channels, fraction in ((64, 1.0), (256, 0.25), (24, 0.5)):
        m = GateShiftFuse(channels, channel_fraction=fraction)
        assert sum(p.numel() for p in m.parameters()) == 29 * m.gated_channels + 40


def test_state_dict_names_match_the_release():
    keys = set(GateShiftFuse(8).state_dict())
    assert keys == {"conv3D.weight", "conv3D.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
                    "bn.num_batches_tracked", "channel_conv1.weight", "channel_conv1.bias",
                    "channel_conv2.weight", "channel_conv2.bias"}
    assert {k for k in GateShiftFuse(16, groups=4).state_dict() if k.startswith("channel_conv")} == {
        f"channel_conv{i}.{p}" for i in range(1, 5) for p in ("weight", "bias")}
    assert set(GateShiftFuse(8, gate="plus_one", fusion="sum").state_dict()) == set()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"groups": 3}, "groups=3"),
        ({"gate": "temporal"}, "gate='temporal'"),
        ({"fusion": "concat"}, "fusion='concat'"),
        ({"channel_fraction": 0.0}, "channel_fraction must be a fraction in (0, 1], got 0.0"),
        ({"channel_fraction": 25}, "got 25"),
        ({"channel_fraction": 0.25, "groups": 4}, "C'=4"),
    ],
)
def test_bad_knobs_are_rejected_with_the_value_named(kwargs, fragment):
    with pytest.raises(GSFConfigError) as err:
        GateShiftFuse(16, layer_name="layer2.1", **kwargs)
    assert fragment in str(err.value)
    assert "layer2.1" in str(err.value)


def test_indivisible_channels_error_names_c_fraction_and_groups():
    with pytest.raises(GSFConfigError, match=r"C=12 .*channel_fraction=0.5 .*C'=6.*groups=2"):
        GateShiftFuse(12, channel_fraction=0.5, layer_name="blk")


def _grads(module, x, frames, upstream):
    x = x.clone().requires_grad_(True)
    out = module(x, num_frames=frames)
    out.backward(upstream)
    grads = {name: p.grad.clone() for name, p in module.named_parameters()}
    return out.detach(), x.grad, grads


# The knobs' vocabulary, read from the knob dataclass: a new gate, fusion or group count is checked against the
# reference without editing this file.
KNOB_CHOICES = {name: spec.choices for name, spec in GSFKnobs.specs().items() if spec.choices is not None}

# Every path that runs on CPU: a learned gate has the fused and the composed path (the CUDA default,
# forced here); the fixed gates have only the composed one.
SWEEP = [(groups, gate, fusion, fraction, frames, path)
         for groups, gate, fusion, fraction, frames in itertools.product(
             KNOB_CHOICES["groups"],
             KNOB_CHOICES["gate"],
             KNOB_CHOICES["fusion"],
             (1.0, 0.5),                                                         # channel_fraction
             (1, 3))                                                             # frames
         for path in (("fused", "composed") if gate in LEARNED_GATES else ("auto",))]


def test_the_sweep_covers_every_choice_of_every_gsf_knob():
    assert set(KNOB_CHOICES) == {"groups", "gate", "fusion", "zero_init_gate"}
    for index, name in enumerate(("groups", "gate", "fusion")):
        assert {case[index] for case in SWEEP} == set(KNOB_CHOICES[name]), name


@pytest.mark.parametrize(("groups", "gate", "fusion", "fraction", "frames", "path"), SWEEP)
def test_fast_module_equals_reference_in_outputs_and_gradients(groups, gate, fusion, fraction, frames, path):
    _assert_fast_equals_reference(groups, gate, fusion, fraction, frames, path)


@pytest.mark.parametrize(("groups", "fusion", "fraction"), list(itertools.product(
    (1, 2, 4), KNOB_CHOICES["fusion"], (1.0, 0.5))))
def test_fast_module_equals_reference_when_large_maps_are_done_in_pieces(monkeypatch, groups, fusion, fraction):
    # Large maps are processed a few samples (GateTaps, eval) or a band of pixels (ShiftFuse) at a time;
    # a 1-byte budget makes every map "large", so each piece is one sample / one pixel.
    from gsf.ops import _gsf_functions

    monkeypatch.setattr(_gsf_functions, "_CHUNK_BYTES", 1)
    _assert_fast_equals_reference(groups, "spatiotemporal", fusion, fraction, 3, "fused")


def _assert_fast_equals_reference(groups, gate, fusion, fraction, frames, path):
    torch.manual_seed(groups * 100 + frames)
    kwargs = dict(groups=groups, gate=gate, fusion=fusion, channel_fraction=fraction)
    ref = GateShiftFuseReference(32, **kwargs).double()
    fast = GateShiftFuse(32, **kwargs, path=path).double()
    assert fast.resolved_path("cpu") == ("composed" if path == "auto" else path)
    ref_sd = ref.state_dict()
    assert {k: v.shape for k, v in fast.state_dict().items()} == {k: v.shape for k, v in ref_sd.items()}
    fast.load_state_dict(ref_sd)
    x = _clip_input(2, frames, 32, h=5, w=4).double() * 2
    upstream = torch.randn(2 * frames, 32, 5, 4, dtype=torch.float64)
    for training in (True, False):
        ref.train(training)
        fast.train(training)
        out_r, gx_r, gp_r = _grads(ref, x, frames, upstream)
        out_f, gx_f, gp_f = _grads(fast, x, frames, upstream)
        torch.testing.assert_close(out_f, out_r, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(gx_f, gx_r, rtol=1e-5, atol=1e-7)
        assert gp_f.keys() == gp_r.keys()
        for name in gp_r:
            torch.testing.assert_close(gp_f[name], gp_r[name], rtol=1e-5, atol=1e-7, msg=name)
        ref.zero_grad()
        fast.zero_grad()
    for name, buf in ref.named_buffers():
        torch.testing.assert_close(dict(fast.named_buffers())[name], buf)


def test_fast_module_equals_reference_in_float32():
    ref = GateShiftFuseReference(32, groups=2)
    fast = GateShiftFuse(32, groups=2)
    fast.load_state_dict(ref.state_dict())
    x = _clip_input(2, 4, 32, h=7, w=7)
    torch.testing.assert_close(fast(x, num_frames=4), ref(x, num_frames=4), rtol=1e-5, atol=1e-5)


def test_channels_last_input_gives_the_same_output_and_layout():
    m = GateShiftFuse(16, channel_fraction=0.5)
    x = _clip_input(2, 3, 16, h=5, w=4)
    x_cl = x.to(memory_format=torch.channels_last).requires_grad_(True)
    out = m(x_cl, num_frames=3)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, m(x, num_frames=3))
    out.sum().backward()
    assert x_cl.grad.shape == x.shape


def test_running_statistics_are_updated_once_per_training_forward():
    ref = GateShiftFuseReference(16).double()
    fast = GateShiftFuse(16).double()
    fast.load_state_dict(ref.state_dict())
    for momentum in (0.1, None):
        ref.bn.momentum = fast.bn.momentum = momentum
        x = _clip_input(2, 3, 16).double()
        ref(x, num_frames=3).sum().backward()
        fast(x, num_frames=3).sum().backward()
        for name, buf in ref.bn.named_buffers():
            torch.testing.assert_close(getattr(fast.bn, name), buf)


def test_auto_path_is_fused_on_cpu_eager_and_composed_compiled_or_elsewhere(monkeypatch):
    assert GSF_PATHS == ("auto", "fused", "composed")
    assert path_for_device("cpu") == "fused" and path_for_device("cpu", compiled=True) == "composed"
    assert path_for_device("cuda") == "composed" and path_for_device("mps") == "composed"
    assert path_for_device("cuda", compiled=True) == "composed"
    m = GateShiftFuse(8)
    assert m.resolved_path("cpu") == "fused" and m.resolved_path("cuda") == "composed"
    assert m.resolved_path("meta") == "composed"  # the fused Functions have no meta kernels
    assert GateShiftFuse(8, path="fused").resolved_path("cuda") == "fused"  # forced wins off CPU
    assert GateShiftFuse(8, path="composed").resolved_path("cpu") == "composed"
    assert GateShiftFuse(8, gate="plus_one", path="fused").resolved_path("cpu") == "composed"  # no fused kind
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # as while dynamo traces
    assert m.resolved_path("cpu") == "composed"
    assert GateShiftFuse(8, path="fused").resolved_path("cpu") == "fused"  # forced wins under compile too


@pytest.mark.parametrize(("path", "fused_function"), [("auto", True), ("fused", True), ("composed", False)])
def test_the_chosen_path_is_the_one_that_runs(path, fused_function):
    # The fused path's output comes out of the ShiftFuse autograd Function; the composed one's does not.
    m = GateShiftFuse(16, path=path)
    out = m(_clip_input(2, 3, 16).requires_grad_(), num_frames=3)
    assert ("ShiftFuseBackward" in _autograd_node_names(out)) == fused_function


def _autograd_node_names(out):
    """Class names of every node of out's autograd graph."""
    seen, todo = {}, [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and id(node) not in seen:
            seen[id(node)] = type(node).__name__
            todo += [next_node for next_node, _ in node.next_functions]
    return set(seen.values())


def test_set_gsf_path_sets_every_gsf_module_and_rejects_unknown_paths():
    model = torch.nn.Sequential(GateShiftFuse(8), torch.nn.ReLU(), GateShift(8))
    assert set_gsf_path(model, "composed") == 2
    assert [m.path for m in (model[0], model[2])] == ["composed", "composed"]
    with pytest.raises(GSFConfigError, match="path='triton'"):
        set_gsf_path(model, "triton")
    with pytest.raises(GSFConfigError, match="layer 'layer1.0'.*path='gpu'"):
        GateShiftFuse(8, path="gpu", layer_name="layer1.0")


@pytest.mark.parametrize("groups", [1, 2])
def test_internal_maps_are_the_gate_and_fusion_weights_of_the_operator(groups):
    """The gate G = tanh(Conv3d(ReLU(BN3d(X)))) (step 3) and w = sigmoid(conv over [mean Y', mean R])
    (step 5), computed here from their definitions, in eval mode."""
    torch.manual_seed(0)
    batch, frames, channels, size = 2, 4, 16, 5
    module = GateShiftFuse(channels, groups=groups).double().eval()
    with torch.no_grad():
        module.bn.running_mean.uniform_(-0.5, 0.5)
        module.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(batch * frames, channels, size, size, dtype=torch.float64)
    maps = module.internal_maps(x, frames)

    X = x.view(batch, frames, channels, size, size).transpose(1, 2)  # (B, C, T, H, W)
    bn = module.bn
    Z = torch.relu((X - bn.running_mean.view(1, -1, 1, 1, 1)) / torch.sqrt(bn.running_var.view(1, -1, 1, 1, 1) + bn.eps)
                   * bn.weight.view(1, -1, 1, 1, 1) + bn.bias.view(1, -1, 1, 1, 1))
    gate = torch.tanh(torch.nn.functional.conv3d(Z, module.conv3D.weight, module.conv3D.bias, padding=1, groups=groups))
    torch.testing.assert_close(maps["gate"], gate.transpose(1, 2).reshape(batch, frames, groups, size * size))

    # Step 4-5 by hand: channel c of group g uses gate map g (G=1: one map for all), receives the next frame in
    # the first half of the shift blocks' directions as the reference defines them.
    from gsf.ops.reference import receives_next_frame

    per_group = channels // groups
    g_full = gate.repeat_interleave(per_group, dim=1)  # (B, C, T, H, W)
    Y, R = g_full * X, X - g_full * X
    nxt = torch.tensor(receives_next_frame(channels, groups)).view(1, -1, 1, 1, 1)
    shifted = torch.where(nxt, torch.nn.functional.pad(Y, (0, 0, 0, 0, -1, 1)),
                          torch.nn.functional.pad(Y, (0, 0, 0, 0, 1, -1)))
    p, q = shifted.mean(dim=(3, 4)), R.mean(dim=(3, 4))  # (B, C, T)
    weights = []
    for i in range(groups):
        conv = getattr(module, f"channel_conv{i + 1}")
        part = slice(i * per_group, (i + 1) * per_group)
        image = torch.stack([p[:, part], q[:, part]], dim=1)  # (B, 2, C/G, T)
        weights.append(torch.sigmoid(torch.nn.functional.conv2d(image, conv.weight, conv.bias, padding=1))[:, 0])
    expected_w = torch.cat(weights, dim=1).transpose(1, 2)  # (B, T, C)
    torch.testing.assert_close(maps["fusion_weight"], expected_w)


def test_internal_maps_in_eval_mode_change_nothing_and_fixed_gates_have_no_gate_map():
    module = GateShiftFuse(16).eval()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    module.internal_maps(torch.randn(8, 16, 4, 4), 4)
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    fixed = GateShiftFuse(16, gate="plus_one", fusion="sum")
    assert fixed.internal_maps(torch.randn(8, 16, 4, 4), 4) == {}


@pytest.mark.parametrize("zero_init_gate", KNOB_CHOICES["zero_init_gate"])
@pytest.mark.parametrize("gate", KNOB_CHOICES["gate"])
def test_fast_module_and_reference_start_the_gate_alike(gate, zero_init_gate):
    # zero_init_gate is the one knob the sweep above does not vary (it loads the reference's weights into the
    # fast module): both zero the gate conv for the same values, None meaning GSF's own start (not zeroed).
    torch.manual_seed(0)
    fast = GateShiftFuse(16, gate=gate, zero_init_gate=zero_init_gate)
    torch.manual_seed(0)
    ref = GateShiftFuseReference(16, gate=gate, zero_init_gate=zero_init_gate)
    assert fast.state_dict().keys() == ref.state_dict().keys()
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(fast.state_dict()[name], value, rtol=0, atol=0, msg=name)
    if gate in LEARNED_GATES:
        assert bool(fast.conv3D.weight.abs().sum() == 0) is bool(zero_init_gate)
