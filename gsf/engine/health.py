"""Training health: what a run records besides its loss, so that a run that did not train says why.

Two kinds of measurement, both plain functions of the model and its gradients (no logging here; the trainer
puts the numbers into its epoch metrics, which reach MLflow like every other metric):

- the optimiser's view, per epoch (:class:`GradientRecord`): the global L2 norm of the gradient before
  clipping (mean and maximum over the epoch's steps) and the share of steps whose norm exceeded
  ``optim.clip_grad_norm`` and were clipped;
- what the temporal modules route (:func:`temporal_module_statistics`), for GSF and GSM: per backbone stage,
  the mean |gate| (step 3 of the operator, docs/recipe.md: 0 routes nothing through time, 1 routes a whole
  channel), the share of gate values saturated at |g| > 0.99, where tanh's gradient has vanished, and the
  mean fusion weight w of channel weighting (step 5: 1 takes the shifted part, 0 the residual).

A run whose training loss stays at chance, ln K for K classes, after its warm-up did not train:
:func:`did_not_train` is the one definition the report uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from gsf import mlflow_schema as schema

# |g| above this counts as saturated: tanh'(x) = 1 - g^2 < 0.02 there.
SATURATED_GATE = 0.99
# A post-warm-up training loss at or above this share of ln K counts as "at chance".
CHANCE_LOSS_SHARE = 0.9


class GradientRecord:
    """The global gradient norms of one epoch's optimiser steps, before clipping."""

    def __init__(self, clip_norm: float | None):
        self.clip_norm = clip_norm
        self.norms: list[float] = []

    def add(self, norm: float) -> None:
        self.norms.append(float(norm))

    def metrics(self) -> dict[str, float]:
        """``grad_norm_mean``, ``grad_norm_max`` and ``clipped_share`` (0 without clipping); empty if no step
        was taken."""
        if not self.norms:
            return {}
        clipped = 0 if self.clip_norm is None else sum(n > self.clip_norm for n in self.norms)
        return {schema.GRAD_NORM_MEAN: sum(self.norms) / len(self.norms), schema.GRAD_NORM_MAX: max(self.norms),
                schema.CLIPPED_SHARE: clipped / len(self.norms)}


def gated_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The (dotted name, module) of every GSF / GSM module in ``model`` (the modules with ``internal_maps``)."""
    from gsf.ops.gate_shift_fuse import GateShiftFuse

    return [(name, m) for name, m in model.named_modules() if isinstance(m, GateShiftFuse)]


def stage_of(module_name: str) -> str:
    """The backbone stage a temporal module belongs to: the backbone's child that holds it
    (``backbone.layer3.1.temporal_after_conv3`` -> ``layer3``; Inception: its block, ``inception_4a``)."""
    parts = module_name.split(".")
    if parts[0] == "backbone" and len(parts) > 1:
        return parts[1]
    return parts[0]


@torch.no_grad()
def temporal_module_statistics(model: nn.Module, clips: torch.Tensor) -> dict[str, float]:
    """Per stage, over the GSF / GSM modules of ``model`` on ``clips`` (B, T, 3, H, W): ``gate_abs/<stage>``,
    ``gate_saturated/<stage>`` (learned gates) and ``fusion_weight/<stage>`` (channel weighting), averaged over
    every value of every module of the stage. Runs one forward in eval mode (BN running statistics, dropout
    and the model's mode are left as they were); empty for a model without such modules."""
    modules = gated_modules(model)
    if not modules:
        return {}
    sums: dict[str, list[float]] = {}

    def add(key: str, values: torch.Tensor) -> None:
        total = sums.setdefault(key, [0.0, 0.0])
        total[0] += float(values.double().sum())
        total[1] += values.numel()

    def hook_for(name: str):
        stage = stage_of(name)

        def hook(module, args):
            x = args[0]
            frames = args[1] if len(args) > 1 and args[1] is not None else None
            if x.dim() == 5:
                frames, x = x.shape[1], x.flatten(0, 1)
            maps = module.internal_maps(x, frames)
            if "gate" in maps:
                gate = maps["gate"].abs().float()
                add(f"{schema.GATE_ABS}/{stage}", gate)
                add(f"{schema.GATE_SATURATED}/{stage}", (gate > SATURATED_GATE).float())
            if "fusion_weight" in maps:
                add(f"{schema.FUSION_WEIGHT}/{stage}", maps["fusion_weight"].float())

        return hook

    was_training = model.training
    handles = [m.register_forward_pre_hook(hook_for(name)) for name, m in modules]
    try:
        model.eval()
        model(clips)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {key: total / count for key, (total, count) in sorted(sums.items()) if count}


def did_not_train(train_losses: Iterable[float], *, num_classes: int, warmup_epochs: int) -> bool | None:
    """Whether a run's training loss stayed at chance after the warm-up: every epoch after the first
    ``warmup_epochs`` has a loss of at least ``CHANCE_LOSS_SHARE`` x ln K. ``train_losses`` are the epochs'
    losses in order. None when it cannot be told: no epoch after the warm-up, or K < 2."""
    losses = [float(v) for v in train_losses]
    after = [v for v in losses[warmup_epochs:] if math.isfinite(v)]
    if num_classes < 2 or not after:
        return None
    return min(after) >= CHANCE_LOSS_SHARE * math.log(num_classes)


def epoch_leaving_chance(train_losses: Iterable[float], *, num_classes: int) -> int | None:
    """The first epoch (1-based) whose training loss is below ``CHANCE_LOSS_SHARE`` x ln K: where a run left
    the plateau at chance it starts on. None when no epoch did (or K < 2)."""
    if num_classes < 2:
        return None
    bound = CHANCE_LOSS_SHARE * math.log(num_classes)
    return next((epoch for epoch, v in enumerate(train_losses, start=1) if math.isfinite(v) and v < bound), None)


def per_stage(metrics: Mapping[str, float], measure: str) -> dict[str, float]:
    """``{stage: value}`` of one per-stage measure (``gate_abs``, ...) among ``metrics`` keyed
    ``<measure>/<stage>`` (any prefix before the measure, such as ``ckpt_``, is part of ``measure``)."""
    prefix = measure + "/"
    return {key[len(prefix):]: float(v) for key, v in metrics.items() if key.startswith(prefix)}
