"""`make_temporal_module`: one keyword-only entry point for every temporal-module kind of the registry."""

from __future__ import annotations

from typing import Any

from gsf.errors import GSFConfigError
from gsf.ops.base import TemporalModule
from gsf.ops.registry import kind_knobs, knob_values, temporal_kind
from gsf.vocabulary import TEMPORAL_KINDS

__all__ = ["TEMPORAL_KINDS", "make_temporal_module"]


def make_temporal_module(kind: str, channels: int, *, num_frames: int | None = None, layer_name: str = "",
                         **knobs: Any) -> TemporalModule | None:
    """Build the temporal module of `kind` for a feature map of `channels` channels.

    kind: one of `gsf.ops.registry.TEMPORAL_MODULES` ("none" is TSN and returns None). num_frames: the clip
    length T, required by the kinds whose T is architecture (TAM and TIN: their modules are built for one T
    and run only at it); the others run at any T and ignore it. knobs: any of `gsf.ops.registry.KNOBS` by
    name (``groups``, ``gate``, ``fusion``, ``channel_fraction``, ``zero_init_gate``, ``shift_fraction``,
    ``tam_kernel_size``, ``tam_global_expansion``, ``tam_local_reduction``, ``tin_shift_div``), defaults
    otherwise. Every knob is validated whatever the kind, so a typo in a grid fails early; the knobs a kind
    does not have are then ignored: "tsm" uses only `shift_fraction`; "gsm" always fuses by sum (use kind
    "gsf" with fusion="sum" for a GSF whose gate is not zero-initialised); `zero_init_gate` defaults to True
    for "gsm" and False for "gsf". See the classes for what each knob means.
    """
    entry = temporal_kind(kind, layer_name)
    values = knob_values(knobs, layer_name)
    if entry.build is None:
        return None
    if entry.fixed_num_frames and num_frames is None:
        where = f"layer {layer_name!r}: " if layer_name else ""
        raise GSFConfigError(f"{where}temporal module {kind!r} is built for one clip length (its weights are shaped "
                             "by T): pass num_frames=T")
    return entry.build(channels, layer_name=layer_name, num_frames=num_frames,
                       knobs=kind_knobs(entry, values, layer_name))

