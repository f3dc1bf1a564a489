"""GMACs and parameters of a trial's model, counted on the meta device (no data, no weights)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gsf.vocabulary import PUBLISHED_NUM_CLASSES


def num_classes(config_dict: Mapping[str, Mapping[str, Any]]) -> int | dict[str, int]:
    """The head size for a configuration: the data set's label file when it exists (synthetic data), else
    the data set's published class count."""
    data = config_dict["data"]
    root = Path(data.get("root") or "")
    if data["dataset"] == "ssv2" and data.get("root"):
        for labels in (root / "labels.json", root / "labels" / "labels.json"):
            if labels.is_file():
                return len(json.loads(labels.read_text(encoding="utf-8")))
    return PUBLISHED_NUM_CLASSES[data["dataset"]]


def complexity_of(config_dict: Mapping[str, Mapping[str, Any]], *, input_size: int | None = None,
                  cache: dict | None = None):
    """Per-view :class:`gsf.complexity.Complexity` of a trial's model, at ``input_size`` (default: the
    configuration's), counted on the meta device (no data, no weights). Models with the same knobs are
    counted once when ``cache`` is given."""
    from gsf.engine.config import TrainConfig, model_kwargs

    config = TrainConfig.from_dict(dict(config_dict))
    kwargs = model_kwargs(config, num_classes=num_classes(config_dict), pretrained=False)
    frames = kwargs.pop("num_frames")  # data.num_frames: the clip counted, and the one TAM/TIN are built for
    size = input_size or config.data.input_size
    key = json.dumps([kwargs, frames, size], sort_keys=True, default=str)
    if cache is not None and key in cache:
        return cache[key]
    from gsf.complexity import model_complexity

    result = model_complexity(num_frames=frames, input_size=size, **kwargs)
    if cache is not None:
        cache[key] = result
    return result


def paper_input_size(config_dict: Mapping[str, Mapping[str, Any]]) -> int:
    """The backbone's native (paper) input size (:attr:`gsf.models.BackboneSpec.input_size`); the
    configuration's for a backbone not in the registry."""
    from gsf.models import BACKBONES

    spec = BACKBONES.get(config_dict["model"]["backbone"])
    return spec.input_size if spec is not None else int(config_dict["data"]["input_size"])
