"""GateShiftFuse on CUDA (marked ``gpu``: skipped without a CUDA device) takes the composed path (standard
operators, for ``torch.compile``) and computes what the CPU reference computes, in outputs, input and parameter
gradients and running statistics; a whole GSF network on CUDA equals the same network on the CPU (fused path)."""

from __future__ import annotations

import pytest
import torch

from gsf.models import build_model
from gsf.ops import GateShiftFuse
from gsf.ops import gate_shift_fuse as gsf_module
from gsf.ops.reference import GateShiftFuseReference

pytestmark = pytest.mark.gpu


@pytest.fixture
def no_fused_functions(monkeypatch):
    """The fused path's autograd Functions fail if called: whatever runs is the composed path."""

    class Refused:
        @staticmethod
        def apply(*args, **kwargs):
            raise AssertionError("the fused path ran on CUDA")

    monkeypatch.setattr(gsf_module, "ShiftFuse", Refused)
    monkeypatch.setattr(gsf_module, "GateTaps", Refused)


def forward_backward(module, x, frames, upstream):
    x = x.clone().requires_grad_(True)
    out = module(x, num_frames=frames)
    out.backward(upstream)
    grads = {name: p.grad.detach().cpu().clone() for name, p in module.named_parameters()}
    module.zero_grad()
    return out.detach().cpu(), x.grad.detach().cpu(), grads


KNOBS = [  # (groups, gate, fusion, channel_fraction, frames)
    (2, "spatiotemporal", "channel_weighting", 1.0, 3),  # the paper's
    (1, "spatiotemporal", "sum", 0.5, 3),
    (4, "spatial", "channel_weighting", 0.5, 4),
    (8, "spatiotemporal", "average", 1.0, 1),
    (2, "plus_one", "channel_weighting", 1.0, 3),
]


@pytest.mark.parametrize(("groups", "gate", "fusion", "fraction", "frames"), KNOBS)
def test_gsf_on_cuda_takes_the_composed_path_and_equals_the_cpu_reference(no_fused_functions, groups, gate, fusion,
                                                                          fraction, frames):
    torch.manual_seed(groups * 10 + frames)
    kwargs = dict(groups=groups, gate=gate, fusion=fusion, channel_fraction=fraction)
    reference = GateShiftFuseReference(32, **kwargs).double()
    module = GateShiftFuse(32, **kwargs).double()  # path "auto"
    module.load_state_dict(reference.state_dict())
    module = module.cuda()
    assert module.resolved_path("cuda") == "composed"
    x = torch.randn(2 * frames, 32, 5, 4, dtype=torch.float64)
    upstream = torch.randn(2 * frames, 32, 5, 4, dtype=torch.float64)
    for training in (True, False):
        reference.train(training)
        module.train(training)
        out_r, gx_r, gp_r = forward_backward(reference, x, frames, upstream)
        out_c, gx_c, gp_c = forward_backward(module, x.cuda(), frames, upstream.cuda())
        torch.testing.assert_close(out_c, out_r, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(gx_c, gx_r, rtol=1e-6, atol=1e-8)
        assert gp_c.keys() == gp_r.keys()
        for name in gp_r:
            torch.testing.assert_close(gp_c[name], gp_r[name], rtol=1e-6, atol=1e-8, msg=name)
    buffers = dict(module.named_buffers())
    for name, buffer in reference.named_buffers():
        torch.testing.assert_close(buffers[name].cpu(), buffer, msg=name)


def test_a_gsf_network_on_cuda_equals_the_same_network_on_the_cpu():
    torch.manual_seed(0)
    cpu = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3, dropout=0.0).double()
    cuda = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3, dropout=0.0).double()
    cuda.load_state_dict(cpu.state_dict())
    cuda = cuda.cuda()
    modules = [m for m in cuda.modules() if isinstance(m, GateShiftFuse)]
    assert modules and all(m.resolved_path("cuda") == "composed" and m.resolved_path("cpu") == "fused"
                           for m in modules)
    x = torch.randn(2, 4, 3, 32, 32, dtype=torch.float64)
    labels = torch.tensor([0, 2])
    for training in (True, False):
        cpu.train(training)
        cuda.train(training)
        out_cpu, out_cuda = cpu(x), cuda(x.cuda())
        torch.nn.functional.cross_entropy(out_cpu, labels).backward()
        torch.nn.functional.cross_entropy(out_cuda, labels.cuda()).backward()
        torch.testing.assert_close(out_cuda.detach().cpu(), out_cpu.detach(), rtol=1e-6, atol=1e-8)
        grads_cuda = dict(cuda.named_parameters())
        for name, p in cpu.named_parameters():
            torch.testing.assert_close(grads_cuda[name].grad.cpu(), p.grad, rtol=1e-6, atol=1e-8, msg=name)
        cpu.zero_grad()
        cuda.zero_grad()
    buffers_cuda = dict(cuda.named_buffers())
    for name, buffer in cpu.named_buffers():
        torch.testing.assert_close(buffers_cuda[name].cpu(), buffer, msg=name)


def test_the_composed_path_runs_under_bf16_autocast_on_cuda(no_fused_functions):
    torch.manual_seed(1)
    model = build_model(backbone="resnet_tiny", temporal="gsf", num_classes=3).cuda().train()
    x = torch.randn(2, 4, 3, 32, 32, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    out.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in model.parameters())
