"""GateShiftFuse under `torch.compile(fullgraph=True)`: no graph break on either path, alone and inside a whole
ResNet-50-GSF, with the compiled result equal to eager. Compiled with the "eager" / "aot_eager" backends
(dynamo's graph capture and AOT autograd's joint graph, without inductor's code generation)."""

import pytest
import torch

from gsf.models.registry import build_model
from gsf.ops import GateShiftFuse, set_gsf_path
from gsf.ops.reference import GateShiftFuseReference


@pytest.mark.slow
@pytest.mark.parametrize("path", ["fused", "composed"])
@pytest.mark.parametrize(("training", "memory_format"), [(True, torch.contiguous_format),
                                                         (True, torch.channels_last),
                                                         (False, torch.channels_last)])
def test_module_compiles_in_one_graph_equal_to_the_reference(path, training, memory_format):
    # fraction 0.5: the gated channels are a strided slice of x, as at fraction 0.25 in ResNet-50.
    torch.manual_seed(0)
    reference = GateShiftFuseReference(16, channel_fraction=0.5).train(training)
    m = GateShiftFuse(16, channel_fraction=0.5, path=path).train(training)
    m.load_state_dict(reference.state_dict())
    x = torch.randn(6, 16, 4, 4).to(memory_format=memory_format).requires_grad_()
    torch._dynamo.reset()
    compiled = torch.compile(lambda t: m(t, num_frames=3), backend="aot_eager", fullgraph=True)
    out = compiled(x)
    grad_compiled, = torch.autograd.grad(out.square().sum(), x)
    expected = reference(x, num_frames=3)
    grad_expected, = torch.autograd.grad(expected.square().sum(), x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_compiled, grad_expected, rtol=1e-5, atol=1e-6)
    for name, buffer in reference.bn.named_buffers():  # running statistics updated once, as in eager
        torch.testing.assert_close(getattr(m.bn, name), buffer)


@pytest.mark.slow
@pytest.mark.parametrize("path", ["fused", "composed"])
def test_whole_resnet50_gsf_has_no_graph_break(path):
    # The real ResNet-50 structure (16 GSF modules, fraction 1.0), at a tiny spatial size: 32 px, 2 frames.
    torch.manual_seed(0)
    model = build_model(backbone="resnet50", temporal="gsf", num_classes=5, dropout=0.0)
    assert set_gsf_path(model, path) == 16
    clips = torch.randn(1, 2, 3, 32, 32)
    # fullgraph=True raises at the first graph break; one trace, in training mode (BN batch statistics and
    # running-statistics updates in the graph), to keep the test's dynamo time down.
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(clips), model(clips))


def test_auto_path_runs_fused_eager_on_cpu_and_composed_when_compiled(monkeypatch):
    taken = []

    def recording(name, original):
        def forward(self, *args):
            taken.append(name)
            return original(self, *args)
        return forward

    monkeypatch.setattr(GateShiftFuse, "_forward_learned_gate",
                        recording("fused", GateShiftFuse._forward_learned_gate))
    monkeypatch.setattr(GateShiftFuse, "_forward_composed", recording("composed", GateShiftFuse._forward_composed))
    torch.manual_seed(0)
    m = GateShiftFuse(8)  # path="auto"
    x = torch.randn(4, 8, 4, 4)
    eager = m(x, num_frames=2)
    assert taken == ["fused"]
    torch._dynamo.reset()
    compiled = torch.compile(lambda t: m(t, num_frames=2), backend="eager", fullgraph=True)(x)
    assert taken == ["fused", "composed"]
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
