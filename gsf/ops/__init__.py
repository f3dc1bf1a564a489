"""Temporal modules inserted into 2D backbones: TSM, GSM and GSF (docs/gsf-operator.md section 1), TAM and TIN
(docs/temporal-modules.md); `gsf.ops.registry` lists the kinds and their facts."""

from gsf.ops._knobs import KNOB_CLASSES, GSFKnobs, GSMKnobs, TAMKnobs, TemporalKnobs, TINKnobs, TSMKnobs
from gsf.ops.base import FixedLengthTemporalModule, TemporalModule, set_num_frames
from gsf.ops.factory import TEMPORAL_KINDS, make_temporal_module
from gsf.ops.gate_shift_fuse import GSF_PATHS, GateShift, GateShiftFuse, path_for_device, set_gsf_path
from gsf.ops.registry import KNOBS, TEMPORAL_MODULES, TemporalKind, temporal_kind
from gsf.ops.temporal_adaptive import TemporalAdaptive
from gsf.ops.temporal_interlace import TemporalInterlace
from gsf.ops.temporal_shift import TemporalShift

__all__ = [
    "KNOBS",
    "KNOB_CLASSES",
    "TEMPORAL_KINDS",
    "TEMPORAL_MODULES",
    "GSF_PATHS",
    "FixedLengthTemporalModule",
    "GateShift",
    "GateShiftFuse",
    "GSFKnobs",
    "GSMKnobs",
    "TAMKnobs",
    "TINKnobs",
    "TSMKnobs",
    "TemporalKnobs",
    "TemporalAdaptive",
    "TemporalInterlace",
    "TemporalKind",
    "TemporalModule",
    "TemporalShift",
    "make_temporal_module",
    "path_for_device",
    "set_gsf_path",
    "set_num_frames",
    "temporal_kind",
]
