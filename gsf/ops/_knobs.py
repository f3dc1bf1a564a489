"""Validation of the temporal modules' knobs: those the GSF implementations share (docs/gsf-operator.md section 1, steps
1 and 6) and the generic checks of the others."""

from __future__ import annotations

import math

from gsf.errors import GSFConfigError

GROUPS = (1, 2, 4, 8)
GATES = ("spatiotemporal", "spatial", "plus_one", "minus_one", "none")
LEARNED_GATES = ("spatiotemporal", "spatial")
FUSIONS = ("channel_weighting", "sum", "average")


def _where(layer_name: str) -> str:
    return f"layer {layer_name!r}" if layer_name else "temporal module"


def check_choice(knob: str, value: object, valid: tuple, layer_name: str = "") -> None:
    """Raise GSFConfigError naming the knob, the value and the valid values if value is not valid."""
    if isinstance(value, bool) or value not in valid:
        raise GSFConfigError(f"{_where(layer_name)}: {knob}={value!r} is not one of {list(valid)}")


def check_channels(channels: object, layer_name: str = "") -> int:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise GSFConfigError(f"{_where(layer_name)}: channels must be a positive int, got {channels!r}")
    return channels


def check_positive_int(knob: str, value: object, layer_name: str = "", *, odd: bool = False) -> int:
    """Raise GSFConfigError naming the knob and the value unless it is a positive (and, if asked, odd) int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (odd and value % 2 == 0):
        kind = "an odd positive int" if odd else "a positive int"
        raise GSFConfigError(f"{_where(layer_name)}: {knob} must be {kind}, got {value!r}")
    return value


def gsf_channels(channels: int, channel_fraction: float, groups: int, layer_name: str = "") -> int:
    """Return C', the number of channels that go through GSF (docs/gsf-operator.md section 1, step 1).

    C' = int(C * channel_fraction), rounded up to even. The per-group interleave (step 6) splits each of
    the `groups` groups into two halves, so C' must be divisible by 2 * groups.
    """
    check_channels(channels, layer_name)
    check_choice("groups", groups, GROUPS, layer_name)
    if (isinstance(channel_fraction, bool) or not isinstance(channel_fraction, (int, float))
            or not math.isfinite(channel_fraction) or not 0.0 < channel_fraction <= 1.0):
        raise GSFConfigError(
            f"{_where(layer_name)}: channel_fraction must be a fraction in (0, 1], got {channel_fraction!r}"
        )
    gated = int(channels * channel_fraction)
    gated += gated % 2
    if gated == 0 or gated > channels or gated % (2 * groups) != 0:
        raise GSFConfigError(
            f"{_where(layer_name)}: C={channels} channels with channel_fraction={channel_fraction} give "
            f"C'={gated} GSF channels, but C' must be positive, at most C, and divisible by "
            f"2 * groups = {2 * groups} (groups={groups}) for the per-group channel interleave"
        )
    return gated
