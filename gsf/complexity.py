"""Complexity accounting in the paper's convention (GSF.md section 3), with fvcore.

"GFLOPs" in the action-recognition literature means multiply-accumulates (MACs) of convolution and linear
layers per view (one clip x one crop). fvcore counts those, but also counts batch norm and silently counts
many element-wise operators as zero, so two figures are reported:

- ``gmacs``: conv + linear MACs per view, the paper's figure (what the reference table reproduces);
- ``gmacs_all_ops``: every operator, with element-wise ops (add, mul, sigmoid, tanh, ReLU, means...)
  counted as one operation per output element by handles registered here, and pure data movement
  (roll, slice, cat, view, permute) as zero.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import asdict, dataclass

import torch
from torch import nn

PAPER_OPERATORS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")

# Element-wise operators: one operation per output element.
_ELEMENTWISE = (
    "aten::add", "aten::add_", "aten::sub", "aten::sub_", "aten::rsub", "aten::mul", "aten::mul_", "aten::div",
    "aten::div_", "aten::sigmoid", "aten::sigmoid_", "aten::tanh", "aten::tanh_", "aten::relu", "aten::relu_",
    "aten::gelu", "aten::neg", "aten::addcmul", "aten::lerp", "aten::clamp", "aten::hardtanh", "aten::hardtanh_",
    "aten::silu", "aten::silu_", "aten::exp", "aten::dropout", "aten::where",
)
# Reductions and pools: one operation per input element read.
_REDUCTIONS = ("aten::mean", "aten::sum", "aten::max_pool2d", "aten::avg_pool2d", "aten::max_pool3d",
               "aten::adaptive_max_pool2d")
# Pure data movement: no arithmetic.
_ZERO = ("aten::roll", "aten::im2col", "aten::col2im", "aten::slice", "aten::cat", "aten::constant_pad_nd", "aten::pad", "aten::flip",
         "aten::index_select", "aten::narrow", "aten::zeros_like", "aten::new_zeros", "aten::fill_",
         "aten::copy_", "aten::stack", "aten::expand_as", "aten::repeat", "aten::unbind", "aten::split",
         "aten::chunk", "aten::select", "aten::gather")


def _shape_numel(value) -> int:
    from fvcore.nn.jit_handles import get_shape  # imported late: fvcore is slow to import

    shape = get_shape(value)
    return int(math.prod(shape)) if shape else 0


def _output_elements(inputs, outputs) -> Counter:
    return Counter({"elementwise": sum(_shape_numel(o) for o in outputs)})


def _input_elements(inputs, outputs) -> Counter:
    return Counter({"reduction": _shape_numel(inputs[0])})


def _zero(inputs, outputs) -> Counter:
    return Counter()


@dataclass(frozen=True)
class Complexity:
    """Per-view complexity of a video model; GMACs are 1e9 multiply-accumulates."""

    gmacs: float
    gmacs_all_ops: float
    params: int
    temporal_params: int
    temporal_modules: int

    def as_dict(self) -> dict:
        return asdict(self)


def _temporal_modules(model: nn.Module) -> list[nn.Module]:
    from gsf.ops import TemporalModule

    return [m for m in model.modules() if isinstance(m, TemporalModule)]


def measure_complexity(model: nn.Module, *, num_frames: int, input_size: int) -> Complexity:
    """Count one view (a batch-1 clip of ``num_frames`` frames at ``input_size`` px) in eval mode.

    The model's training mode is restored afterwards (as SlowFast does), and nothing is trained.
    """
    with warnings.catch_warnings():  # fvcore's import touches the deprecated torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    clip = torch.zeros(1, num_frames, 3, input_size, input_size)
    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, clip)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        for name in _ELEMENTWISE:
            analysis.set_op_handle(name, _output_elements)
        for name in _REDUCTIONS:
            analysis.set_op_handle(name, _input_elements)
        for name in _ZERO:
            analysis.set_op_handle(name, _zero)
        by_operator = analysis.by_operator()
        paper = sum(v for k, v in by_operator.items() if k in PAPER_OPERATORS)
        total = sum(by_operator.values())
    finally:
        model.train(was_training)
    temporal = _temporal_modules(model)
    return Complexity(
        gmacs=paper / 1e9,
        gmacs_all_ops=total / 1e9,
        params=sum(p.numel() for p in model.parameters()),
        temporal_params=sum(p.numel() for m in temporal for p in m.parameters()),
        temporal_modules=len(temporal),
    )
