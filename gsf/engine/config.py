"""Typed training configuration: every key, its default and what it means, in one place.

A run is described by :class:`TrainConfig` (sections ``model``, ``data``, ``optim``, ``runtime``). YAML
files override only the keys that change (``yaml.safe_load``), and ``--set section.key=value`` overrides
those (values parsed as YAML scalars). Every value is type-checked against its field; an unknown key is an
error that names it and suggests the closest valid one; :func:`check_config` runs the cross-field checks
(data root present, T against the temporal operator, device and precision) before any work starts.

Defaults follow the release's Something-Something V1 recipe (docs/recipe.md).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gsf.errors import GSFConfigError
from gsf.ops._knobs import KNOB_SPECS
from gsf.vocabulary import DATASET_NAMES, PUBLISHED_NUM_CLASSES, RELEASE_CROP_SCALES, TEMPORAL_KINDS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("sgd", "adamw")
PARAM_GROUP_POLICIES = ("uniform", "tsm")
SCHEDULES = ("cosine", "step")
# runtime.compile: eager, torch.compile's default mode, or its max-autotune mode (docs/compile.md).
COMPILE_MODES = (False, True, "max-autotune")


def _knob(default, doc: str, choices: tuple | None = None):
    """A field with its default, its meaning and (optionally) its valid values."""
    meta = {"doc": doc}
    if choices is not None:
        meta["choices"] = choices
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _temporal_knob(name: str):
    """The field of the temporal-module knob ``name``: default, meaning and valid values from its
    :class:`gsf.ops._knobs.KnobSpec` (the knob dataclasses of gsf/ops/_knobs.py), not retyped here."""
    spec = KNOB_SPECS[name]
    if spec.choices is not None:  # as YAML writes them: null, true, spatiotemporal
        allowed = "one of " + ", ".join(yaml.safe_dump(c).removesuffix("\n...\n").strip() for c in spec.choices)
    else:
        allowed = spec.allowed()
    return _knob(spec.default, f"{spec.doc} ({allowed})", spec.choices)


@dataclass
class ModelConfig:
    """The video model (docs/gsf-operator.md sections 1-2); passed to :func:`gsf.build_model`."""

    backbone: str = _knob("resnet50", "backbone name, one of gsf.models.BACKBONES")
    temporal: str = _knob("gsf", "temporal module: none (TSN), tsm, gsm, gsf, tam or tin (gsf.ops.TEMPORAL_MODULES; "
                                 "tam and tin are built for data.num_frames and run only at it)", TEMPORAL_KINDS)
    # The temporal modules' knobs (gsf.ops._knobs, one dataclass per kind): every knob of every kind is a key
    # here, with the knob's own default and valid values; model_kwargs passes them all to build_model.
    channel_fraction: float = _temporal_knob("channel_fraction")
    groups: int = _temporal_knob("groups")
    gate: str = _temporal_knob("gate")
    fusion: str = _temporal_knob("fusion")
    zero_init_gate: bool | None = _temporal_knob("zero_init_gate")
    shift_fraction: float = _temporal_knob("shift_fraction")
    tam_kernel_size: int = _temporal_knob("tam_kernel_size")
    tam_global_expansion: int = _temporal_knob("tam_global_expansion")
    tam_local_reduction: int = _temporal_knob("tam_local_reduction")
    tin_shift_div: int = _temporal_knob("tin_shift_div")
    placement: str | None = _knob(None, "where modules go in a block; null: the kind's own (TSM/TIN: before "
                                        "conv1, TAM: before conv2 on ResNets), else the paper's")
    stages: list[int] | None = _knob(None, "residual stages (1-4) that get modules; null: all")
    last_n_blocks: int | None = _knob(None, "only the last n blocks of each chosen stage; null: every block")
    dropout: float = _knob(0.5, "dropout before the classifier")
    pretrained: str | bool = _knob("imagenet", "backbone start: imagenet (the release's file, from the torch hub "
                                   "cache or downloaded), none, or a weight file in the backbone's release format")
    init_from: str | None = _knob(None, "fine-tune from this checkpoint (ours or the authors'), head re-initialised "
                                        "when the class count differs; null: start from model.pretrained")


@dataclass
class DataConfig:
    """The data set and how clips are drawn from it (docs/recipe.md, docs/data-formats.md)."""

    dataset: str = _knob("ssv2", "data set format: ssv1, ssv2, diving48, kinetics400, epic100, list",
                         DATASET_NAMES)
    root: str = _knob("", "the data set's root folder as released (required)")
    train_split: str = _knob("train", "split trained on (for 'list': the list file, relative to root)")
    val_split: str = _knob("val", "split validated and tested on (for 'list': the list file)")
    num_frames: int = _knob(8, "T, frames per clip (TSN segments)")
    input_size: int = _knob(224, "side of the square crop fed to the network, pixels")
    batch_size: int = _knob(32, "clips per optimizer micro-batch of one process (global: x runtime.world_size)")
    num_workers: int = _knob(4, "data-loader worker processes (0: load in the main process)")
    val_views: str = _knob("1x1", "validation views CLIPSxCROPS during training (crops 1, 3, 5 or 10)")
    test_views: str = _knob("1x1,2x3", "test protocols CLIPSxCROPS, comma-separated (the paper's 1x1 and 2x3): the "
                                       "best checkpoint is tested at each after training, and by `gsf eval`; '': none")
    test_three_crops: str = _knob("release", "3-crop geometry: release (three input-size crops, left/centre/right) "
                                             "or full_res (TSM: three squares of the whole shorter side)",
                                  ("release", "full_res"))
    test_sampling: str = _knob("tsn", "test clips: tsn (1 clip centres, 2 starts + centres, more: random TSN clips) "
                                      "or dense (TSM's 64-frame windows)", ("tsn", "dense"))
    test_softmax: bool = _knob(False, "average softmax scores over the views instead of logits (the release: logits)")
    skip_bad_samples: bool = _knob(False, "skip (and count) unreadable samples instead of stopping")
    max_videos: int | None = _knob(None, "use only the first n samples of each split (quick runs); null: all")
    randaugment: bool = _knob(True, "RandAugment in the train augmentation (the release: on)")
    train_crop_scales: list[float] = _knob(list(RELEASE_CROP_SCALES),
                                           "multi-scale train crop sides, fractions (0, 1] of the shorter side "
                                           "(the release's four); [1.0]: the whole shorter side, no scale jitter")
    cache_decoded: bool = _knob(False, "keep decoded uint8 frames in memory after the first read (small data sets, "
                                       "data.num_workers 0; the demo's synthetic set)")


@dataclass
class OptimConfig:
    """SGD with linear lr scaling, linear warm-up then cosine, stepped per epoch (docs/recipe.md).

    ``optimizer: adamw`` is not the release's: it is for small networks trained from scratch on CPU (the demo),
    where SGD at the release's lr did not learn the synthetic benchmark in the demo's budget (README)."""

    optimizer: str = _knob("sgd", "sgd (the release: momentum, L2 weight decay) or adamw (torch.optim.AdamW: "
                                  "decoupled weight decay, betas (0.9, 0.999); momentum unused)", OPTIMIZERS)
    lr: float = _knob(0.01, "learning rate at base_batch_size; scaled by the global batch "
                            "(batch_size*world_size*accumulation_steps) / base_batch_size")
    base_batch_size: int = _knob(32, "batch size that lr is given for")
    momentum: float = _knob(0.9, "SGD momentum")
    weight_decay: float = _knob(5e-4, "L2 weight decay on every parameter")
    epochs: int = _knob(60, "training epochs")
    warmup_epochs: int = _knob(10, "epochs of linear warm-up from warmup_start_factor * lr to lr")
    warmup_start_factor: float = _knob(0.1, "lr factor of the first warm-up epoch")
    schedule: str = _knob("cosine", "after the warm-up: cosine to ~0 (the GSF release) or step, x0.1 at each of "
                                    "optim.lr_steps (the TSM code base that TAM and TIN train with)", SCHEDULES)
    lr_steps: list[int] = _knob([], "schedule step: 0-based epochs from which the lr is x0.1 once more (TAM on "
                                    "Something-Something V1: [30, 40, 45])")
    param_groups: str = _knob("uniform", "uniform: one lr and weight decay for every parameter (the GSF release); "
                                         "tsm: TSM's policy, which TAM and TIN train with: every Linear weight lr x5, "
                                         "every Linear bias lr x10 and conv bias lr x2 without decay, BatchNorm without "
                                         "decay (docs/recipe.md)", PARAM_GROUP_POLICIES)
    clip_grad_norm: float | None = _knob(20.0, "clip gradients to this global L2 norm; null: no clipping")
    accumulation_steps: int = _knob(1, "micro-batches per optimizer step (gradient accumulation)")
    partial_bn: bool = _knob(False, "freeze every BatchNorm but the first (TSN's partial BN); release: off")


@dataclass
class RuntimeConfig:
    """Where and how the run executes; none of these change what is learned except seed/precision."""

    device: str = _knob("auto", "auto (CUDA if available), cpu or cuda", DEVICES)
    precision: str = _knob("auto", "auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, or fp16 (CUDA, GradScaler)",
                           PRECISIONS)
    seed: int = _knob(0, "seed of weights, sampling, augmentation and dropout")
    deterministic: bool = _knob(False, "torch.use_deterministic_algorithms (slower; exact resume on CPU)")
    eval_every: int = _knob(5, "validate every n epochs (and always after the last)")
    num_threads: int | None = _knob(None, "torch CPU threads; null: torch's default")
    progress: bool = _knob(True, "tqdm progress bar per epoch")
    world_size: int = _knob(1, "data-parallel processes (DDP), one device each, started by Ray Train (gsf train "
                               "--nproc N, a sweep's workers_per_trial) or torchrun: nccl on GPUs, else gloo on CPU")
    sync_bn: bool = _knob(False, "SyncBatchNorm across the data-parallel processes (statistics of the global "
                                 "batch; CUDA only); false: each process its own batch, as the release")
    compile: bool | str = _knob(False, "torch.compile the model trained and evaluated (gsf train, gsf eval): false "
                                       "(eager), true (torch's default mode) or max-autotune; GSF runs its composed "
                                       "path, a graph break is an error, compile time is logged (compile_seconds) and "
                                       "left out of clips_per_second (docs/compile.md)", COMPILE_MODES)


SECTIONS = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig, "runtime": RuntimeConfig}


@dataclass
class TrainConfig:
    """A whole run. ``to_dict``/``from_dict`` round-trip through plain (YAML/JSON-able) values."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: {f.name: _plain(getattr(getattr(self, name), f.name))
                       for f in dataclasses.fields(getattr(self, name))} for name in SECTIONS}

    @classmethod
    def from_dict(cls, data: dict | None, *, source: str = "configuration") -> TrainConfig:
        config = cls()
        apply_dict(config, data or {}, source=source)
        return config

    def copy(self, values: Mapping[str, Any] | None = None, *, source: str = "copy") -> TrainConfig:
        """An independent copy, with ``values`` (``{"section.key": value}``) set and checked as overrides."""
        config = TrainConfig.from_dict(self.to_dict(), source=source)
        for key, value in (values or {}).items():
            set_value(config, key, value, source=source)
        return config

    def flat(self) -> dict[str, Any]:
        """``{"section.key": value}`` for every key (lists stay lists)."""
        return {f"{section}.{key}": value for section, values in self.to_dict().items() for key, value in values.items()}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def describe() -> str:
    """Every key with its default and meaning, as YAML comments (for ``gsf train --help-config``)."""
    lines = []
    for name, cls in SECTIONS.items():
        lines.append(f"{name}:  # {cls.__doc__.splitlines()[0]}")
        for f in dataclasses.fields(cls):
            default = TrainConfig().to_dict()[name][f.name]
            lines.append(f"  {f.name}: {yaml.safe_dump(default, default_flow_style=True).strip().removesuffix('...').strip()}"
                         f"  # {f.metadata['doc']}")
    return "\n".join(lines)


# --- type checking -----------------------------------------------------------------------------------

def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


# A number in exponent form without a dot in the mantissa (``1e-3``, ``5E4``): a float to a reader, a string
# to PyYAML's YAML 1.1 resolver.
_YAML11_EXPONENT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")


def _coerce(key: str, value, tp):
    """``value`` checked against the annotation ``tp`` (int, float, bool, str, list[int], X | None)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except GSFConfigError as err:
                errors.append(err)
        raise GSFConfigError(f"{key}: {value!r} is not of type {_type_name(tp)}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise GSFConfigError(f"{key}: {value!r} is not of type {_type_name(tp)} (expected a list)")
        return [_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise GSFConfigError(f"{key}: {value!r} is not of type bool (write true or false)")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GSFConfigError(f"{key}: {value!r} is not of type int")
        return value
    if tp is float:
        if isinstance(value, str) and _YAML11_EXPONENT.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-3 (no dot in the mantissa) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GSFConfigError(f"{key}: {value!r} is not of type float")
        if not math.isfinite(value):
            raise GSFConfigError(f"{key}: {value!r} is not a finite float")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise GSFConfigError(f"{key}: {value!r} is not of type str")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")  # a bug in this file, not user input


def _suggest(name: str, valid) -> str:
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {match[0]!r}?" if match else f"; valid keys: {', '.join(valid)}"


def set_value(config: TrainConfig, key: str, value, *, source: str = "override") -> None:
    """Set ``section.key`` to ``value`` after checking the key exists and the value's type and choices."""
    parts = key.split(".")
    if len(parts) != 2 or not all(parts):
        raise GSFConfigError(f"{source}: key {key!r} must be 'section.key' with section one of {list(SECTIONS)}"
                             + (_suggest(key, TrainConfig().flat()) if key else ""))
    section, name = parts
    if section not in SECTIONS:
        raise GSFConfigError(f"{source}: unknown section {section!r} in {key!r}{_suggest(section, SECTIONS)}")
    target = getattr(config, section)
    hints = typing.get_type_hints(type(target))
    fields = {f.name: f for f in dataclasses.fields(target)}
    if name not in fields:
        flat = [f"{section}.{n}" for n in fields] + [k for k in TrainConfig().flat() if not k.startswith(section + ".")]
        raise GSFConfigError(f"{source}: unknown key {key!r}{_suggest(key, flat)}")
    checked = _coerce(f"{source}: {key}", value, hints[name])
    choices = fields[name].metadata.get("choices")
    if choices is not None and checked not in choices:
        raise GSFConfigError(f"{source}: {key}={checked!r} is not one of {list(choices)}"
                             + (_suggest(str(checked), [str(c) for c in choices]) if isinstance(checked, str) else ""))
    setattr(target, name, checked)


def apply_dict(config: TrainConfig, data: dict, *, source: str = "configuration") -> None:
    """Override ``config`` with a nested ``{section: {key: value}}`` mapping, checking every key."""
    if not isinstance(data, dict):
        raise GSFConfigError(f"{source}: expected a mapping of sections {list(SECTIONS)}, got {type(data).__name__}")
    for section, values in data.items():
        if section not in SECTIONS:
            raise GSFConfigError(f"{source}: unknown section {section!r}{_suggest(str(section), SECTIONS)}")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise GSFConfigError(f"{source}: section {section!r} must be a mapping of keys, got {values!r}")
        for key, value in values.items():
            set_value(config, f"{section}.{key}", value, source=source)


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=0.02"`` -> ``("optim.lr", 0.02)``; the value is parsed as YAML (``null``, ``[3, 4]``)."""
    if "=" not in text:
        raise GSFConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise GSFConfigError(f"override {text!r}: value {raw!r} is not valid YAML ({err})") from err
    return key.strip(), value


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), *,
                check: bool = True) -> TrainConfig:
    """Defaults, then the YAML file at ``path`` (if any), then ``overrides`` (``"section.key=value"``).

    With ``check`` (the default) the cross-field checks of :func:`check_config` run too.
    """
    config = TrainConfig()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise GSFConfigError(f"configuration file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise GSFConfigError(f"{path}: invalid YAML ({err})") from err
        apply_dict(config, data or {}, source=str(path))
    for text in overrides:
        key, value = parse_override(text)
        set_value(config, key, value, source=f"--set {text}")
    if check:
        check_config(config)
    return config


# --- cross-field checks ------------------------------------------------------------------------------

def parse_views(text: str, *, key: str = "views") -> tuple[int, int]:
    """``"2x3"`` -> ``(2, 3)``: clips x crops (crops 1, 3, 5 or 10, docs/recipe.md)."""
    from gsf.data.transforms import TEST_CROP_COUNTS

    try:
        clips, crops = (int(part) for part in str(text).lower().split("x"))
    except ValueError:
        raise GSFConfigError(f"{key}={text!r} must be CLIPSxCROPS, e.g. '1x1' or '2x3'") from None
    if clips < 1 or crops not in TEST_CROP_COUNTS:
        raise GSFConfigError(f"{key}={text!r}: need clips >= 1 and crops one of {', '.join(map(str, TEST_CROP_COUNTS))}")
    return clips, crops


def parse_protocols(text: str, *, key: str = "data.test_views") -> list[str]:
    """``"1x1,2x3"`` -> ``["1x1", "2x3"]``: comma-separated test protocols CLIPSxCROPS, each checked by
    :func:`parse_views` and written canonically; ``""`` -> ``[]``; a protocol listed twice is an error."""
    protocols = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        clips, crops = parse_views(part, key=key)
        if f"{clips}x{crops}" in protocols:
            raise GSFConfigError(f"{key}={text!r} lists protocol {clips}x{crops} twice")
        protocols.append(f"{clips}x{crops}")
    return protocols


def resolve_device(config: TrainConfig) -> str:
    """``runtime.device``, with ``auto`` resolved: CUDA when there is one GPU per process
    (``runtime.world_size``), else the CPU."""
    import torch

    if config.runtime.device == "auto":
        enough = torch.cuda.is_available() and torch.cuda.device_count() >= _gpus_needed_here(config)
        return "cuda" if enough else "cpu"
    return config.runtime.device


def _gpus_needed_here(config: TrainConfig) -> int:
    """GPUs this process must see: its own one in a process group (each rank one device), else one per process."""
    import torch.distributed as dist

    return 1 if dist.is_available() and dist.is_initialized() else config.runtime.world_size


def resolve_precision(config: TrainConfig) -> str:
    if config.runtime.precision == "auto":
        return "bf16" if resolve_device(config) == "cuda" else "fp32"
    return config.runtime.precision


def check_config(config: TrainConfig, *, need_data: bool = True) -> None:
    """Cross-field checks, run before any work; each error names the keys and values at fault."""
    import torch

    m, d, o, r = config.model, config.data, config.optim, config.runtime
    positive = {"data.num_frames": d.num_frames, "data.input_size": d.input_size, "data.batch_size": d.batch_size,
                "optim.base_batch_size": o.base_batch_size, "optim.epochs": o.epochs,
                "optim.accumulation_steps": o.accumulation_steps, "runtime.eval_every": r.eval_every,
                "runtime.world_size": r.world_size}
    for key, value in positive.items():
        if value < 1:
            raise GSFConfigError(f"{key}={value} must be >= 1")
    if not d.train_crop_scales or any(not 0 < f <= 1 for f in d.train_crop_scales):
        raise GSFConfigError(f"data.train_crop_scales={d.train_crop_scales} must be a non-empty list of fractions "
                             "in (0, 1]")
    if d.num_workers < 0:
        raise GSFConfigError(f"data.num_workers={d.num_workers} must be >= 0")
    if d.max_videos is not None and d.max_videos < 1:
        raise GSFConfigError(f"data.max_videos={d.max_videos} must be >= 1 or null")
    if r.num_threads is not None and r.num_threads < 1:
        raise GSFConfigError(f"runtime.num_threads={r.num_threads} must be >= 1 or null")
    if o.lr <= 0:
        raise GSFConfigError(f"optim.lr={o.lr} must be positive")
    if not 0 <= o.momentum < 1 or o.weight_decay < 0:
        raise GSFConfigError(f"optim.momentum={o.momentum} must be in [0, 1) and optim.weight_decay="
                             f"{o.weight_decay} >= 0")
    if o.schedule == "step" and (not o.lr_steps or list(o.lr_steps) != sorted(set(o.lr_steps))
                                 or not all(o.warmup_epochs <= s < o.epochs for s in o.lr_steps)):
        raise GSFConfigError(f"optim.lr_steps={o.lr_steps} must be increasing epochs in [optim.warmup_epochs="
                             f"{o.warmup_epochs}, optim.epochs={o.epochs}) for optim.schedule=step")
    if not 0 <= o.warmup_epochs < o.epochs:
        raise GSFConfigError(f"optim.warmup_epochs={o.warmup_epochs} must be in [0, optim.epochs={o.epochs})")
    if not 0 < o.warmup_start_factor <= 1:
        raise GSFConfigError(f"optim.warmup_start_factor={o.warmup_start_factor} must be in (0, 1]")
    if o.clip_grad_norm is not None and o.clip_grad_norm <= 0:
        raise GSFConfigError(f"optim.clip_grad_norm={o.clip_grad_norm} must be positive or null")
    if not 0 <= m.dropout < 1:
        raise GSFConfigError(f"model.dropout={m.dropout} must be in [0, 1)")
    parse_views(d.val_views, key="data.val_views")
    parse_protocols(d.test_views, key="data.test_views")
    from gsf.models.registry import backbone_spec
    from gsf.models.weights import check_starting_weights

    backbone_spec(m.backbone)  # an unknown name: the registry's error, with its suggestion
    check_starting_weights(backbone=m.backbone, pretrained=m.pretrained, init_from=m.init_from)
    if m.tam_kernel_size < 1 or m.tam_kernel_size % 2 == 0:
        raise GSFConfigError(f"model.tam_kernel_size={m.tam_kernel_size} must be odd and >= 1 (a kernel centred on "
                             "the frame)")
    for key in ("tam_global_expansion", "tam_local_reduction", "tin_shift_div"):
        if getattr(m, key) < 1:
            raise GSFConfigError(f"model.{key}={getattr(m, key)} must be >= 1")
    if m.stages is not None and (not m.stages or any(s not in (1, 2, 3, 4) for s in m.stages)):
        raise GSFConfigError(f"model.stages={m.stages} must be a non-empty list of stages 1-4 or null")
    # One device per process: data.batch_size is what one device sees (gsf.engine.distributed).
    if r.device == "cuda" and not torch.cuda.is_available():
        raise GSFConfigError("runtime.device='cuda' but CUDA is not available; use 'auto' or 'cpu'")
    if r.device == "cuda" and torch.cuda.device_count() < _gpus_needed_here(config):
        raise GSFConfigError(f"runtime.world_size={r.world_size} with runtime.device='cuda' needs one GPU per "
                             f"process, but {torch.cuda.device_count()} are visible; use fewer processes or "
                             "runtime.device='auto'/'cpu' (gloo on CPU)")
    device = resolve_device(config)
    if r.sync_bn and r.world_size > 1 and device != "cuda":
        raise GSFConfigError(f"runtime.sync_bn=true needs CUDA (torch's SyncBatchNorm runs on GPUs only; the run's "
                             f"device is {device}); set runtime.sync_bn=false for gloo on CPU")
    if r.precision == "fp16" and device != "cuda":
        raise GSFConfigError(f"runtime.precision='fp16' needs CUDA (device is {device}); use fp32 or bf16")
    if need_data:
        root = Path(d.root) if d.root else None
        if root is None or not root.is_dir():
            raise GSFConfigError(f"data.root={d.root!r} is not an existing folder (the data set's root as released)")
    check_model(config)


def check_model(config: TrainConfig) -> None:
    """Build the model on the meta device (no memory, no weights) and run one clip of T frames through
    it, so knob and clip-length errors surface as GSFConfigError before any data is read."""
    import torch

    from gsf.models.registry import build_meta_model

    m, d = config.model, config.data
    num_classes = PUBLISHED_NUM_CLASSES[d.dataset]  # any head does on the meta device; EPIC's has two
    try:
        model = build_meta_model(**model_kwargs(config, num_classes=num_classes, pretrained=False))
    except GSFConfigError as err:
        raise GSFConfigError(f"model section {config.to_dict()['model']}: {err}") from err
    try:
        model.eval()
        model(torch.empty(1, d.num_frames, 3, d.input_size, d.input_size, device="meta"))
    except (ValueError, RuntimeError) as err:  # ours (GSFConfigError) or torch's shape errors
        raise GSFConfigError(
            f"model {m.backbone}/{m.temporal} cannot run clips of data.num_frames={d.num_frames} frames at "
            f"data.input_size={d.input_size}: {err}") from err


def model_kwargs(config: TrainConfig, *, num_classes, pretrained: bool | str | None = None) -> dict:
    """Keyword arguments of :func:`gsf.build_model` for this configuration (with ``model.init_from``, the
    backbone starts from nothing: the checkpoint replaces its weights, :func:`gsf.models.weights.init_from_checkpoint`).
    ``num_frames`` is ``data.num_frames``: the clip length the TAM and TIN modules are built for (their weights
    are shaped by it), so a checkpoint's configuration rebuilds the same architecture."""
    m = config.model
    return dict(backbone=m.backbone, temporal=m.temporal, num_classes=num_classes,
                pretrained=(("none" if m.init_from else m.pretrained) if pretrained is None else pretrained),
                dropout=m.dropout, num_frames=config.data.num_frames,
                placement=m.placement, stages=m.stages, last_n_blocks=m.last_n_blocks,
                **{name: getattr(m, name) for name in KNOB_SPECS})
