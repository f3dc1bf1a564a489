"""Temporal modules inserted into 2D backbones: TSM, GSM and GSF (GSF.md section 1)."""

from gsf.ops.base import TemporalModule, set_num_frames
from gsf.ops.factory import TEMPORAL_KINDS, make_temporal_module
from gsf.ops.gate_shift_fuse import GSF_PATHS, GateShift, GateShiftFuse, path_for_device, set_gsf_path
from gsf.ops.temporal_shift import TemporalShift

__all__ = [
    "TEMPORAL_KINDS",
    "GSF_PATHS",
    "GateShift",
    "GateShiftFuse",
    "TemporalModule",
    "TemporalShift",
    "make_temporal_module",
    "path_for_device",
    "set_gsf_path",
    "set_num_frames",
]
