"""`make_temporal_module`: one keyword-only entry point for every temporal-module kind."""

from __future__ import annotations

from gsf.errors import GSFConfigError
from gsf.ops._knobs import FUSIONS, GATES, check_choice
from gsf.ops.base import TemporalModule
from gsf.ops.gate_shift_fuse import GateShift, GateShiftFuse
from gsf.ops.temporal_shift import TemporalShift
from gsf.vocabulary import TEMPORAL_KINDS


def make_temporal_module(kind: str, channels: int, *, layer_name: str = "", groups: int = 2,
                         gate: str = "spatiotemporal", fusion: str = "channel_weighting",
                         channel_fraction: float = 1.0, shift_fraction: float = 1 / 8,
                         zero_init_gate: bool | None = None) -> TemporalModule | None:
    """Build the temporal module of `kind` for a feature map of `channels` channels.

    kind: "none" (TSN, returns None), "tsm" (`TemporalShift`), "gsm" (`GateShift`), "gsf"
    (`GateShiftFuse`). Every knob is validated whatever the kind, so a typo in a grid fails early; the
    knobs a kind does not have are then ignored: "tsm" uses only `shift_fraction`; "gsm" always fuses by
    sum (use kind "gsf" with fusion="sum" for a GSF whose gate is not zero-initialised) and ignores
    `shift_fraction`; "gsf" ignores `shift_fraction`. `zero_init_gate` defaults to True for "gsm" and
    False for "gsf". See the classes for what each knob means.
    """
    check_choice("kind", kind, TEMPORAL_KINDS, layer_name)
    check_choice("gate", gate, GATES, layer_name)
    check_choice("fusion", fusion, FUSIONS, layer_name)
    if zero_init_gate is not None and not isinstance(zero_init_gate, bool):
        raise GSFConfigError(f"layer {layer_name!r}: zero_init_gate must be a bool or None, got {zero_init_gate!r}")
    if kind == "none":
        return None
    if kind == "tsm":
        return TemporalShift(channels, shift_fraction=shift_fraction, layer_name=layer_name)
    if kind == "gsm":
        return GateShift(channels, groups=groups, gate=gate, channel_fraction=channel_fraction,
                         zero_init_gate=True if zero_init_gate is None else zero_init_gate,
                         layer_name=layer_name)
    return GateShiftFuse(channels, groups=groups, gate=gate, fusion=fusion, channel_fraction=channel_fraction,
                         zero_init_gate=bool(zero_init_gate), layer_name=layer_name)
