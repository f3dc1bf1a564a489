"""Short names of model variants, as the paper's tables and figures write them: ``TSN``, ``TSM``, ``GSM``,
``GSF``, and a GSF with the knobs that differ from the paper's setting appended (``GSF G=1``, ``GSF sum``,
``GSF avg``, ``GSF 25 %``, ``GSF after conv2``).

The paper's setting of every knob is the default of :class:`gsf.engine.config.ModelConfig` (GSF.md
sections 1-2), read from there, so a grid never types a name: a variant is named from its flat config
(``{"model.temporal": "gsf", "model.groups": "1", ...}``, values as Python objects or as the strings MLflow
logs them). Knobs a temporal kind does not have (GSF's fusion on TSM, any knob on TSN) do not appear in its
name; neither do backbone, frames or recipe, which tables show as columns of their own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

KIND_NAMES = {"none": "TSN", "tsm": "TSM", "gsm": "GSM", "gsf": "GSF"}
# The knobs each temporal kind has (gsf/ops/factory.py: TSM only shifts, GSM always fuses by sum).
INSERTION_KNOBS = ("placement", "stages", "last_n_blocks")
KIND_KNOBS = {
    "none": (),
    "tsm": INSERTION_KNOBS,
    "gsm": ("groups", "gate", "channel_fraction", *INSERTION_KNOBS),
    "gsf": ("groups", "gate", "fusion", "channel_fraction", *INSERTION_KNOBS),
}
FUSION_NAMES = {"sum": "sum", "average": "avg", "channel_weighting": "channel weighting"}
# Placements that mean "where the paper puts it" for a kind (null: the backbone's default; ResNet's TSM
# default is before conv1, gsf/models/registry.py).
DEFAULT_PLACEMENTS = {"tsm": (None, "before_conv1"), "gsm": (None, "paper", "authors"),
                      "gsf": (None, "paper", "authors")}


def paper_setting() -> dict[str, Any]:
    """The paper's value of every model knob: ``ModelConfig``'s defaults, by short key (``groups``)."""
    from gsf.engine.config import ModelConfig

    return {f.name: f.default for f in dataclasses.fields(ModelConfig)}


def _plain(value: Any) -> Any:
    """A flat-config value as a Python value: MLflow's ``"None"``/``"1"``/``"0.25"``/``"[3, 4]"`` too."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        try:
            import yaml

            return yaml.safe_load(text)
        except Exception:  # not YAML: the string as given
            return text
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _percent(fraction: float) -> str:
    text = f"{fraction * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text} %"


def _knob_text(knob: str, value: Any) -> str:
    if knob == "groups":
        return f"G={value}"
    if knob == "fusion":
        return FUSION_NAMES.get(str(value), str(value))
    if knob == "channel_fraction":
        return _percent(float(value))
    if knob == "gate":
        return f"{str(value).replace('_', ' ')} gate"
    if knob == "placement":
        return str(value).replace("_", " ")
    if knob == "stages":
        stages = [int(s) for s in value] if isinstance(value, (list, tuple)) else [value]
        return "stage " + ",".join(str(s) for s in stages) if len(stages) == 1 else \
            "stages " + ",".join(str(s) for s in stages)
    if knob == "last_n_blocks":
        return f"last {value} blocks"
    return f"{knob}={value}"


def variant_name(flat_config: Mapping[str, Any]) -> str:
    """The short name of the variant a flat config trains, e.g. ``"GSF G=1"`` or ``"TSM"``.

    Keys are ``model.<knob>`` (bare ``<knob>`` is accepted too); missing knobs take the paper's setting.
    Knobs appear in the order of :data:`KIND_KNOBS`. An unknown temporal kind is named as written.
    """
    def get(knob: str) -> Any:
        if f"model.{knob}" in flat_config:
            return _plain(flat_config[f"model.{knob}"])
        return _plain(flat_config.get(knob, defaults[knob]))

    defaults = paper_setting()
    kind = str(flat_config.get("model.temporal", flat_config.get("temporal", defaults["temporal"]))).strip().lower()
    parts = [KIND_NAMES.get(kind, kind)]
    for knob in KIND_KNOBS.get(kind, ()):
        value = get(knob)
        if knob == "placement":
            if value in DEFAULT_PLACEMENTS.get(kind, (None,)):
                continue
        elif value is None or _same(value, _plain(defaults[knob])):
            continue
        parts.append(_knob_text(knob, value))
    return " ".join(parts)
