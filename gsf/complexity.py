"""Complexity accounting in the paper's convention (docs/gsf-operator.md section 3).

"GFLOPs" in the action-recognition literature means multiply-accumulates (MACs) of convolution and linear
layers per view (one clip x one crop). Two figures are reported:

- ``gmacs``: conv + linear MACs per view, the paper's figure (what the reference table reproduces);
- ``gmacs_all_ops``: every operator, with batch norm as fvcore counts it, element-wise ops (add, mul,
  sigmoid, tanh, ReLU, dropout...) as one operation per output element, reductions and pools as one per
  input element, and pure data movement (roll, slice, cat, view, permute, pad) as zero.

:func:`measure_complexity` counts both on the meta device: the model runs on shape-only tensors (no memory,
no arithmetic) under a ``TorchFunctionMode`` that applies fvcore's counting rules to each operator call, from
the shapes alone. It is seen at the granularity fvcore's JIT trace records (``F.linear`` is one ``linear``,
not the ``addmm`` it decomposes into), so both figures equal fvcore's count exactly; fvcore itself stays
available as :func:`measure_complexity_fvcore`, the slower tracer that the tests hold it equal to. An
operator fvcore counts but this counter has no rule for (einsum, interpolation, grid sampling, instance
norm) raises instead of counting as zero.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from gsf.errors import GSFUnsupportedError
from gsf.models.registry import build_meta_model  # noqa: F401 (re-exported: count a model without memory)

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
_ZERO = ("aten::roll", "aten::im2col", "aten::col2im", "aten::slice", "aten::cat", "aten::constant_pad_nd", "aten::pad",
         "aten::flip",
         "aten::index_select", "aten::narrow", "aten::zeros_like", "aten::new_zeros", "aten::fill_",
         "aten::copy_", "aten::stack", "aten::expand_as", "aten::repeat", "aten::unbind", "aten::split",
         "aten::chunk", "aten::select", "aten::gather")


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


def _complexity(model: nn.Module, by_operator: Mapping[str, float]) -> Complexity:
    paper = sum(v for k, v in by_operator.items() if k in PAPER_OPERATORS)
    temporal = _temporal_modules(model)
    return Complexity(
        gmacs=paper / 1e9,
        gmacs_all_ops=sum(by_operator.values()) / 1e9,
        params=sum(p.numel() for p in model.parameters()),
        temporal_params=sum(p.numel() for m in temporal for p in m.parameters()),
        temporal_modules=len(temporal),
    )


# --- the meta-device counter -------------------------------------------------------------------------
# Each rule maps the operator JIT tracing records for a Python call (fvcore's name for it, without
# "aten::") to (by-operator key, count), from the shapes of the call's arguments and result.

def _numel(value: Any) -> int:
    # fvcore reads shapes from the trace and counts a 0-dim tensor (a scalar) as no element.
    return value.numel() if isinstance(value, torch.Tensor) and value.dim() else 0


def _arg(args: tuple, kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _conv(args, kwargs, out, *, transposed: bool) -> int:
    # fvcore's conv_flop_count: batch x prod(weight shape) x prod(output spatial shape); for transposed
    # convolutions the input's spatial shape. Bias additions are not counted.
    x, weight = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    spatial = (x if transposed else out).shape[2:]
    return x.shape[0] * math.prod(weight.shape) * math.prod(spatial)


def _linear(args, kwargs, out) -> int:
    return _numel(_arg(args, kwargs, 0, "input")) * _arg(args, kwargs, 1, "weight").shape[0]


def _addmm(args, kwargs, out) -> int:
    rows, inner = _arg(args, kwargs, 1, "mat1").shape
    return rows * inner * _arg(args, kwargs, 2, "mat2").shape[1]


def _matmul(args, kwargs, out) -> int:  # also mm and bmm: prod(first operand) x last dim of the second
    return _numel(args[0]) * args[1].shape[-1]


def _norm(input_: torch.Tensor, affine: bool) -> int:
    return _numel(input_) * (5 if affine else 4)


def _batch_norm(args, kwargs, out, *, functional: bool) -> int:
    # F.batch_norm(input, running_mean, running_var, weight, bias, training) records aten::batch_norm(input,
    # weight, bias, running_mean, running_var, training): the same arguments in another order.
    if functional:
        weight, training = _arg(args, kwargs, 3, "weight"), _arg(args, kwargs, 5, "training")
    else:
        weight, training = _arg(args, kwargs, 1, "weight"), _arg(args, kwargs, 5, "training")
    x = args[0]
    if training:
        return _norm(x, weight is not None)
    return _numel(x) * (2 if weight is not None else 1)


def _output_elements(args, kwargs, out) -> int:
    return sum(map(_numel, out)) if isinstance(out, (tuple, list)) else _numel(out)


def _input_elements(args, kwargs, out) -> int:
    return _numel(_arg(args, kwargs, 0, "input"))


_RULES: dict[str, tuple[str, Callable[..., int]]] = {
    **{name: ("conv", functools.partial(_conv, transposed=False)) for name in ("conv1d", "conv2d", "conv3d")},
    **{name: ("conv", functools.partial(_conv, transposed=True))
       for name in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")},
    "linear": ("linear", _linear),
    "addmm": ("addmm", _addmm),
    "matmul": ("matmul", _matmul),
    "mm": ("mm", _matmul),
    "bmm": ("bmm", _matmul),
    "layer_norm": ("layer_norm", lambda a, k, o: _norm(a[0], _arg(a, k, 2, "weight") is not None)),
    "group_norm": ("group_norm", lambda a, k, o: _norm(a[0], _arg(a, k, 2, "weight") is not None)),
    "adaptive_avg_pool2d": ("adaptive_avg_pool2d", _input_elements),
    **{name.removeprefix("aten::"): ("elementwise", _output_elements) for name in _ELEMENTWISE},
    **{name.removeprefix("aten::"): ("reduction", _input_elements) for name in _REDUCTIONS},
}
# Python operators record the aten operator they call (``2 / x`` records reciprocal, then mul).
_DUNDERS = {"__add__": "add", "__radd__": "add", "__iadd__": "add_", "__sub__": "sub", "__rsub__": "rsub",
            "__isub__": "sub_", "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul_", "__truediv__": "div",
            "__itruediv__": "div_", "__rdiv__": "mul", "__neg__": "neg", "__matmul__": "matmul"}
# Operators fvcore counts that have no rule here: counting them as zero would silently differ from fvcore.
_NO_RULE = ("einsum", "interpolate", "grid_sample", "instance_norm")


@functools.cache
def _signature(func: Callable) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a text signature
        return None


def _traced_name(func: Callable, args: tuple, kwargs: Mapping[str, Any]) -> str:
    name = getattr(func, "__name__", "")
    name = _DUNDERS.get(name, name)
    if getattr(func, "__module__", None) == "torch.nn.functional":
        # F.relu(x, inplace=True) records relu_, F.dropout(..., inplace=True) dropout_ (which fvcore does
        # not count), F.batch_norm the aten signature's operator.
        signature = _signature(func)
        if signature is not None and "inplace" in signature.parameters:
            if signature.bind(*args, **kwargs).arguments.get("inplace", False):
                name += "_"
    return name


class _OperatorCounter(TorchFunctionMode):
    """Counts, by operator, what fvcore's handles would count on the JIT trace of the same calls.

    Torch-function modes see each Python-level call once: the operators a call runs inside are not seen
    (the mode is off while it runs), as the tracer records a composite operator and not its parts.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_operator: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _traced_name(func, args, kwargs)
        if name == "batch_norm":
            # The result has the input's shape; the meta kernel (a Python decomposition) would take half of
            # the counting time, so it is not run.
            out = torch.empty_like(args[0])
            self.by_operator["batch_norm"] += _batch_norm(args, kwargs, out, functional=func is F.batch_norm)
            return out
        if name in _NO_RULE:
            raise GSFUnsupportedError(f"the meta-device counter has no rule for {name}; count this model with "
                                      "gsf.complexity.measure_complexity_fvcore")
        out = func(*args, **kwargs)
        if name in _RULES:
            key, rule = _RULES[name]
            self.by_operator[key] += rule(args, kwargs, out)
        return out


def count_operators(model: nn.Module, clip: torch.Tensor) -> Counter:
    """fvcore-style counts by operator of ``model(clip)`` for a meta-device ``model`` and ``clip``."""
    with _OperatorCounter() as counter, torch.no_grad():
        model(clip)
    return counter.by_operator


def _on_meta(model: nn.Module) -> nn.Module:
    """``model`` itself when every parameter and buffer is on the meta device, else a meta-device copy
    (the copy shares nothing: moving to meta drops the data)."""
    tensors = [*model.parameters(), *model.buffers()]
    if all(t.device.type == "meta" for t in tensors):
        return model
    # Deep-copy the modules with every tensor pre-mapped to a meta twin, so no weight's data is copied.
    memo = {id(t): nn.Parameter(torch.empty_like(t, device="meta"), requires_grad=t.requires_grad)
            if isinstance(t, nn.Parameter) else torch.empty_like(t, device="meta") for t in tensors}
    return copy.deepcopy(model, memo)


def measure_complexity(model: nn.Module, *, num_frames: int, input_size: int) -> Complexity:
    """Count one view (a batch-1 clip of ``num_frames`` frames at ``input_size`` px) in eval mode, on the
    meta device: a model elsewhere is counted on a meta copy of it, whatever its size, in well under a
    second. The model's training mode is restored afterwards (as SlowFast does), and nothing is trained."""
    meta = _on_meta(model)
    clip = torch.zeros(1, num_frames, 3, input_size, input_size, device="meta")
    with _eval_mode(meta):
        by_operator = count_operators(meta, clip)
    return _complexity(model, by_operator)


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    """The model in eval mode inside the block, its own training mode restored after it."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def model_complexity(*, num_frames: int, input_size: int, **model_kwargs) -> Complexity:
    """:func:`measure_complexity` of the model ``build_model(num_frames=num_frames, **model_kwargs)`` would build,
    built on meta (``num_frames`` is architecture for TAM and TIN, ignored by the other kinds)."""
    return measure_complexity(build_meta_model(num_frames=num_frames, **model_kwargs), num_frames=num_frames,
                              input_size=input_size)


@dataclass(frozen=True)
class ViewsComplexity:
    """GMACs of a multi-view test (docs/gsf-operator.md section 3: per-view cost x clips x crops), each view counted at
    the crop size the test actually runs (:func:`gsf.data.transforms.view_crop_size`)."""

    views: str  # CLIPSxCROPS
    crop_size: int
    gmacs_per_view: float
    gmacs_all_ops_per_view: float
    num_views: int

    @property
    def gmacs(self) -> float:
        return self.gmacs_per_view * self.num_views

    @property
    def gmacs_all_ops(self) -> float:
        return self.gmacs_all_ops_per_view * self.num_views

    def as_dict(self) -> dict:
        return {"views": self.views, "crop_size": self.crop_size, "gmacs_per_view": self.gmacs_per_view,
                "gmacs_views": self.gmacs, "gmacs_all_ops_views": self.gmacs_all_ops}


def measure_views_complexity(model: nn.Module, *, num_frames: int, input_size: int, views: str,
                             three_crop: str = "release", measure: Callable[..., Complexity] | None = None
                             ) -> ViewsComplexity:
    """Complexity of testing ``model`` at ``views`` (CLIPSxCROPS) with ``input_size`` crops: the release's
    3 crops are ``input_size`` px, TSM's full-resolution ones (``three_crop="full_res"``) the whole
    shorter side (256 px for 224). ``measure``: the per-view counter (default :func:`measure_complexity`)."""
    from gsf.data.transforms import view_crop_size
    from gsf.engine.config import parse_views

    clips, crops = parse_views(views, key="views")
    side = view_crop_size(input_size, crops, three_crop)
    per_view = (measure or measure_complexity)(model, num_frames=num_frames, input_size=side)
    return ViewsComplexity(f"{clips}x{crops}", side, per_view.gmacs, per_view.gmacs_all_ops, clips * crops)


def views_complexity(*, num_frames: int, input_size: int, views: str, three_crop: str = "release",
                     **model_kwargs) -> ViewsComplexity:
    """:func:`measure_views_complexity` of the model ``build_model(num_frames=num_frames, **model_kwargs)`` would
    build (on meta); for a report's multi-view GMACs column."""
    return measure_views_complexity(build_meta_model(num_frames=num_frames, **model_kwargs), num_frames=num_frames,
                                    input_size=input_size, views=views, three_crop=three_crop)


# --- fvcore's JIT tracer (the reference the meta counter is held equal to) -----------------------------

def _shape_numel(value) -> int:
    from fvcore.nn.jit_handles import get_shape  # imported late: fvcore is slow to import

    shape = get_shape(value)
    return int(math.prod(shape)) if shape else 0


def _fv_output_elements(inputs, outputs) -> Counter:
    return Counter({"elementwise": sum(_shape_numel(o) for o in outputs)})


def _fv_input_elements(inputs, outputs) -> Counter:
    return Counter({"reduction": _shape_numel(inputs[0])})


def _fv_zero(inputs, outputs) -> Counter:
    return Counter()


def fvcore_operators(model: nn.Module, clip: torch.Tensor) -> Counter:
    """fvcore's counts by operator of ``model(clip)``, with this module's handles for element-wise ops,
    reductions and data movement. Traces the model on real tensors: slow (seconds per model)."""
    with warnings.catch_warnings():  # fvcore's import touches the deprecated torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, clip)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    for name in _ELEMENTWISE:
        analysis.set_op_handle(name, _fv_output_elements)
    for name in _REDUCTIONS:
        analysis.set_op_handle(name, _fv_input_elements)
    for name in _ZERO:
        analysis.set_op_handle(name, _fv_zero)
    return Counter(analysis.by_operator())


def measure_complexity_fvcore(model: nn.Module, *, num_frames: int, input_size: int) -> Complexity:
    """:func:`measure_complexity` by fvcore's JIT tracer on a CPU model (the reference; seconds per model)."""
    clip = torch.zeros(1, num_frames, 3, input_size, input_size)
    with _eval_mode(model):
        by_operator = fvcore_operators(model, clip)
    return _complexity(model, by_operator)
