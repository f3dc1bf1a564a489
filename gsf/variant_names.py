"""Short names of model variants, as the paper's tables and figures write them: ``TSN``, ``TSM``, ``GSM``,
``GSF``, ``TAM``, ``TIN``, and a variant with the knobs that differ from the paper's setting appended
(``GSF G=1``, ``GSF sum``, ``GSF avg``, ``GSF 25 %``, ``GSF after conv2``, ``TAM kernel_size=5``).

The paper's setting of every knob is the default of :class:`gsf.engine.config.ModelConfig` (docs/gsf-operator.md
sections 1-2), read from there, so a grid never types a name: a variant is named from its flat config
(``{"model.temporal": "gsf", "model.groups": "1", ...}``, values as Python objects or as the strings MLflow
logs them). Knobs a temporal kind does not have (GSF's fusion on TSM, any knob on TSN) do not appear in its
name; neither do backbone, frames or recipe, which tables show as columns of their own.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any

INSERTION_KNOBS = ("placement", "stages", "last_n_blocks")
FUSION_NAMES = {"sum": "sum", "average": "avg", "channel_weighting": "channel weighting"}


@functools.cache
def kind_facts() -> tuple[dict[str, str], dict[str, tuple[str, ...]], dict[str, tuple]]:
    """From the registry of temporal modules (:data:`gsf.ops.TEMPORAL_MODULES`): each kind's name in tables
    (``"TSM"``), the configuration knobs it has, in the order names show them (TSM only shifts, GSM always
    fuses by sum), and the placements that mean "where its paper puts it" (null: the default; a kind with a
    placement of its own, TSM's and TIN's before conv1 or TAM's before conv2, has only that one)."""
    from gsf.engine.config import ModelConfig
    from gsf.models import BACKBONES
    from gsf.ops import TEMPORAL_MODULES

    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    backbone_defaults = tuple(dict.fromkeys(spec.default_placement for spec in BACKBONES.values()))
    names = {name: kind.label for name, kind in TEMPORAL_MODULES.items()}
    knobs = {name: () if kind.build is None else
             (*(k.name for k in kind.knobs if k.name in fields), *INSERTION_KNOBS)
             for name, kind in TEMPORAL_MODULES.items()}
    placements = {name: (None, *(kind.placements.values() or backbone_defaults))
                  for name, kind in TEMPORAL_MODULES.items()}
    return names, knobs, placements


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


def _knob_text(knob: str, value: Any, kind: str = "") -> str:
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
    return f"{knob.removeprefix(kind + '_')}={value}"  # a kind's own knob without its prefix: "TAM kernel_size=5"


def variant_name(flat_config: Mapping[str, Any]) -> str:
    """The short name of the variant a flat config trains, e.g. ``"GSF G=1"`` or ``"TSM"``.

    Keys are ``model.<knob>`` (bare ``<knob>`` is accepted too); missing knobs take the paper's setting.
    Knobs appear in the order of the kind's registry entry (:func:`kind_facts`). An unknown temporal kind is
    named as written.
    """
    def get(knob: str) -> Any:
        if f"model.{knob}" in flat_config:
            return _plain(flat_config[f"model.{knob}"])
        return _plain(flat_config.get(knob, defaults[knob]))

    defaults = paper_setting()
    kind_names, kind_knobs, default_placements = kind_facts()
    kind = str(flat_config.get("model.temporal", flat_config.get("temporal", defaults["temporal"]))).strip().lower()
    parts = [kind_names.get(kind, kind)]
    for knob in kind_knobs.get(kind, ()):
        value = get(knob)
        if knob == "placement":
            if value in default_placements.get(kind, (None,)):
                continue
        elif value is None or _same(value, _plain(defaults[knob])):
            continue
        parts.append(_knob_text(knob, value, kind))
    return " ".join(parts)
