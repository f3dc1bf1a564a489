"""A generic executor for the Inception layer graphs in `gsf.models.specs`, and temporal-module insertion.

The Inception backbones of the GSF release are caffe ports whose layers are named one by one (their
state-dict keys are flat: `inception_3a_1x1.weight`, `mixed_10_tower_2_conv_Conv2D.bias`). Rather than
nesting modules and renaming keys, `InceptionGraph` builds one child per graph row under that row's
module id and runs the rows in order, so the authors' checkpoints load strictly.

Temporal modules (docs/gsf-operator.md section 2) go after a conv and before its BN. The slot after conv `X` is named
`gsf_X`, as in the authors' graphs; a module inserted there is a new child under that name (existing keys
are unchanged) and is called as `module(x)` on the (B*T, C, H, W) conv output. It learns the clip length
from `gsf.ops.set_num_frames`, which the video model calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from gsf.errors import GSFConfigError

MakeModule = Callable[[int, str], "nn.Module | None"]

TEMPORAL_PREFIX = "gsf_"
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
GRAPH_INPUT = "data"


class GraphRow(NamedTuple):
    """One row of a layer graph; see `gsf.models.specs` for the meaning of `params` per op."""

    module_id: str
    op: str
    params: tuple
    inputs: tuple[str, ...]
    output: str


class _Step(NamedTuple):
    """One executable step: `op` on the tensors named `inputs`, result stored under `output`."""

    op: str
    module_id: str
    inputs: tuple[str, ...]
    output: str
    temporal_slot: str | None  # for convs: the child name a temporal module after this conv would have


def temporal_slot_name(conv_id: str) -> str:
    """The child name of the temporal module after conv `conv_id` (the authors' `gsf_<conv id>`)."""
    return TEMPORAL_PREFIX + conv_id


def _build_layer(row: GraphRow, in_channels: int) -> nn.Module:
    if row.op == "conv":
        out_channels, kernel, stride, padding = row.params
        return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=True)
    if row.op == "bn":
        return nn.BatchNorm2d(in_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
    if row.op == "relu":
        return nn.ReLU(inplace=True)
    if row.op == "max_pool":
        kernel, stride, padding = row.params
        return nn.MaxPool2d(kernel, stride=stride, padding=padding, ceil_mode=True)
    if row.op == "avg_pool":
        kernel, stride, padding = row.params
        return nn.AvgPool2d(kernel, stride=stride, padding=padding, ceil_mode=True, count_include_pad=True)
    if row.op == "global_avg_pool":
        return nn.AdaptiveAvgPool2d(1)
    if row.op == "linear":
        raise ValueError(f"graph row {row.module_id!r}: the classifier is not part of the backbone; end the "
                         "graph at the global pool")
    raise ValueError(f"graph row {row.module_id!r}: unknown op {row.op!r}")


class InceptionGraph(nn.Module):
    """Runs a layer graph given as rows `(module_id, op, params, inputs, output)` on frames.

    Builds the rows up to and including the one writing tensor `output`, and returns that tensor
    flattened to (N, C). `"temporal"` rows are the graph's own temporal slots (the authors' placement);
    they are identities until `insert_temporal_modules` puts a module there. Subclasses set the class
    attributes below and `placements`, the temporal placements they offer as conv ids.
    """

    feature_dim: ClassVar[int]
    input_size: ClassVar[int]
    input_space: ClassVar[str] = "BGR"
    input_range: ClassVar[tuple[float, float]] = (0.0, 255.0)
    input_mean: ClassVar[tuple[float, float, float]] = (104.0, 117.0, 128.0)
    input_std: ClassVar[tuple[float, float, float]] = (1.0, 1.0, 1.0)

    def __init__(
        self,
        rows: Sequence[tuple],
        *,
        output: str,
        in_channels: int = 3,
        extra_placements: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__()
        channels: dict[str, int] = {GRAPH_INPUT: in_channels}
        producer: dict[str, GraphRow] = {}
        alias: dict[str, str] = {}  # output of an empty temporal slot -> the conv output it passes on
        steps: list[_Step] = []
        authors: list[str] = []
        for raw in rows:
            row = GraphRow(*raw)
            inputs = tuple(alias.get(name, name) for name in row.inputs)
            missing = [name for name in inputs if name not in channels]
            if missing:
                raise ValueError(f"graph row {row.module_id!r} reads {missing}, which no earlier row writes")
            if row.op == "temporal":
                source = producer.get(inputs[0])
                if source is None or source.op != "conv" or row.module_id != temporal_slot_name(source.module_id):
                    raise ValueError(
                        f"graph row {row.module_id!r}: a temporal row must follow a conv and be named "
                        f"'{TEMPORAL_PREFIX}<conv id>'"
                    )
                if row.params[0] != channels[inputs[0]]:
                    raise ValueError(
                        f"graph row {row.module_id!r}: declares {row.params[0]} channels, its conv gives "
                        f"{channels[inputs[0]]}"
                    )
                alias[row.output] = inputs[0]
                authors.append(source.module_id)
            elif row.op == "concat":
                total = sum(channels[name] for name in inputs)
                if total != row.params[0]:
                    raise ValueError(f"graph row {row.module_id!r}: concat gives {total} channels, "
                                     f"the graph declares {row.params[0]}")
                channels[row.output] = total
                steps.append(_Step("concat", row.module_id, inputs, row.output, None))
            else:
                self.add_module(row.module_id, _build_layer(row, channels[inputs[0]]))
                channels[row.output] = row.params[0] if row.op == "conv" else channels[inputs[0]]
                slot = temporal_slot_name(row.module_id) if row.op == "conv" else None
                steps.append(_Step(row.op, row.module_id, inputs, row.output, slot))
            producer[row.output] = row
            if row.output == output:
                break
        else:
            raise ValueError(f"no graph row writes the requested output {output!r}")
        self._steps = tuple(steps)
        self._output = output
        self._conv_channels = {
            step.module_id: channels[step.output] for step in steps if step.op == "conv"
        }
        self.placements: dict[str, tuple[str, ...]] = {"authors": tuple(authors), "none": ()}
        for name, conv_ids in (extra_placements or {}).items():
            unknown = [conv_id for conv_id in conv_ids if conv_id not in self._conv_channels]
            if unknown:
                raise ValueError(f"placement {name!r} names convs not in the graph: {unknown}")
            self.placements[name] = tuple(conv_ids)

    def conv_channels(self, conv_id: str) -> int:
        """Output channels of conv `conv_id` (the channels a temporal module after it sees)."""
        return self._conv_channels[conv_id]

    def temporal_module_names(self) -> list[str]:
        """Names of the temporal modules inserted so far, in execution order."""
        return [step.temporal_slot for step in self._steps
                if step.temporal_slot is not None and step.temporal_slot in self._modules]

    def insert_temporal_modules(self, *, make_module: MakeModule, placement: str = "authors") -> list[str]:
        """Insert a temporal module after each conv of `placement`, before its BN (docs/gsf-operator.md section 2).

        `make_module(channels, layer_name)` receives the conv's output channels and the slot name
        `gsf_<conv id>` and returns a module, or None to leave that slot empty. The module becomes a new
        child under the slot name. Returns the names of the inserted modules.
        """
        if placement not in self.placements:
            raise GSFConfigError(
                f"{type(self).__name__}: unknown temporal placement {placement!r}; valid placements: "
                f"{sorted(self.placements)}"
            )
        inserted = []
        for conv_id in self.placements[placement]:
            name = temporal_slot_name(conv_id)
            if name in self._modules:
                raise GSFConfigError(f"{type(self).__name__}: a temporal module is already inserted at {name!r}")
            module = make_module(self.conv_channels(conv_id), name)
            if module is None:
                continue
            self.add_module(name, module)
            inserted.append(name)
        return inserted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frames (N, C_in, H, W) -> features (N, feature_dim) after the global pool."""
        tensors = {GRAPH_INPUT: x}
        modules = self._modules
        for step in self._steps:
            if step.op == "concat":
                tensors[step.output] = self._concat(step, [tensors[name] for name in step.inputs], x)
                continue
            out = modules[step.module_id](tensors[step.inputs[0]])
            if step.temporal_slot is not None:
                temporal = modules.get(step.temporal_slot)
                if temporal is not None:
                    out = temporal(out)
            tensors[step.output] = out
        return torch.flatten(tensors[self._output], 1)

    def _concat(self, step: _Step, parts: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        try:
            return torch.cat(parts, dim=1)
        except RuntimeError as err:
            sizes = ", ".join(f"{p.shape[-2]}x{p.shape[-1]}" for p in parts)
            expected = getattr(self, "input_size", None)
            hint = f"; this network takes {expected}x{expected} px input" if expected else ""
            raise GSFConfigError(
                f"{type(self).__name__}: a {x.shape[-2]}x{x.shape[-1]} px input gives branches of "
                f"different sizes ({sizes}) at {step.module_id!r}{hint}"
            ) from err


def insert_temporal_modules(
    backbone: InceptionGraph, *, make_module: MakeModule, placement: str = "authors"
) -> list[str]:
    """Insert temporal modules into an Inception backbone; see `InceptionGraph.insert_temporal_modules`."""
    if not isinstance(backbone, InceptionGraph):
        raise GSFConfigError(f"expected an Inception backbone, got {type(backbone).__name__}")
    return backbone.insert_temporal_modules(make_module=make_module, placement=placement)
