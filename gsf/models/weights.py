"""Starting weights: the release's ImageNet files per backbone, user weight files, checkpoints to fine-tune
from, and the authors' checkpoints (docs/gsf-operator.md section 2).

The release always starts from ImageNet (docs/gsf-operator.md section 2): torchvision's files for ResNet, TSN's
``bn_inception-9f5701afb96c8044.pth`` for BN-Inception and the CUHK ``inceptionv3-cuhk-0e09b300b493bc74c.pth``
for InceptionV3. :data:`IMAGENET_WEIGHTS` lists the file of every backbone that has one. A file is looked up
in the torch hub cache (``torch.hub.get_dir()/checkpoints``, where torchvision keeps its own); when it is
absent it is downloaded there with the hash check of ``torch.hub`` (the sha256 prefix in the file name),
unless ``GSF_OFFLINE=1``; offline, the error names the file, its URL and the folder to put it in.

Two weight-file formats, the ones the release reads:

- ``"torchvision"``: the state dict of the torchvision model, classifier included (ResNet, RegNet, ConvNeXt).
- ``"inception"``: a state dict keyed by the layer ids of the Inception graphs (our module names), its 1-D
  tensors stored with a leading dimension of 1 (the release squeezes dim 0), no ``num_batches_tracked``,
  and the ImageNet classifier (``fc`` / ``top_cls_fc``).

Only the classifier may be missing or unexpected (and the BN counters an Inception file never has); any
other difference is a :class:`GSFCheckpointError` naming the keys. Weights go into the backbone before the
temporal modules are inserted, so those keep their own initialisation.
"""

from __future__ import annotations

import os
import re
import urllib.error
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.hub import download_url_to_file

from gsf.errors import GSFCheckpointError, GSFConfigError
from gsf.state_dicts import read_checkpoint, state_dict_diff

PRETRAINED_CHOICES = ("imagenet", "none")
OFFLINE_ENV = "GSF_OFFLINE"
WEIGHT_FORMATS = ("torchvision", "inception")
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")


@dataclass(frozen=True)
class WeightFile:
    """One backbone's ImageNet weight file as the release uses it.

    ``classifier``: key prefixes of the ImageNet classifier (dropped: the video model has its own head);
    ``renames``: key prefix of the file -> ours, where our backbone names a layer differently.
    """

    url: str
    format: str
    classifier: tuple[str, ...]
    renames: Mapping[str, str] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        """The sha256 prefix written in the file name (``torch.hub``'s convention, checked on download)."""
        match = _HASH_IN_NAME.search(self.file_name)
        if match is None:  # a bug in the table below, not user input
            raise RuntimeError(f"weight file name {self.file_name!r} carries no hash")
        return match.group(1)


def _imagenet_weights() -> dict[str, WeightFile]:
    from torchvision.models import convnext as tv_convnext

    from gsf.models.modern import REGNETS
    from gsf.models.resnet import TORCHVISION_RESNETS

    table = {name: WeightFile(weights.url, "torchvision", ("fc.",)) for name, (_, weights) in TORCHVISION_RESNETS.items()}
    table.update({name: WeightFile(weights.url, "torchvision", ("fc.",)) for name, (_, weights) in REGNETS.items()})
    table["convnext_tiny"] = WeightFile(tv_convnext.ConvNeXt_Tiny_Weights.IMAGENET1K_V1.url, "torchvision",
                                        ("classifier.2.",), {"classifier.0.": "norm."})
    # Served by the TSN authors (docs/gsf-operator.md section 2); the hash in the name is the file's sha256 prefix.
    table["bninception"] = WeightFile("https://yjxiong.blob.core.windows.net/models/bn_inception-9f5701afb96c8044.pth",
                                      "inception", ("fc.",))
    table["inceptionv3"] = WeightFile(
        "https://yjxiong.blob.core.windows.net/models/inceptionv3-cuhk-0e09b300b493bc74c.pth", "inception",
        ("top_cls_fc.",))
    return table


IMAGENET_WEIGHTS: dict[str, WeightFile] = _imagenet_weights()


def torch_hub_checkpoint_dir() -> Path:
    """The folder where torch hub and torchvision keep downloaded weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def normalise_pretrained(value) -> str:
    """``"imagenet"``, ``"none"`` or a weight-file path (as a string) from a ``pretrained`` value; the bools
    of earlier versions map to ``"imagenet"`` (True) and ``"none"`` (False / None)."""
    if value is True:
        return "imagenet"
    if value is False or value is None:
        return "none"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str) and value.strip():
        return value
    raise GSFConfigError(f"pretrained={value!r}: choose 'imagenet', 'none' or the path of a weight file")


def weight_file(backbone: str) -> WeightFile:
    """The ImageNet weight file of ``backbone``; a backbone without one is a :class:`GSFConfigError`
    (:func:`gsf.engine.config.check_config` reports an unknown name first, with the registry's suggestion)."""
    if backbone not in IMAGENET_WEIGHTS:
        raise GSFConfigError(f"backbone {backbone!r} has no ImageNet weights (those of "
                             f"{', '.join(IMAGENET_WEIGHTS)} do); set pretrained: none or give a weight file")
    return IMAGENET_WEIGHTS[backbone]


def check_starting_weights(*, backbone: str, pretrained, init_from=None) -> None:
    """Before any work: ``pretrained`` is a valid value for ``backbone`` (``"imagenet"`` needs a file in
    :data:`IMAGENET_WEIGHTS`, a path must exist) and ``init_from`` (a checkpoint) exists. Nothing is read
    or downloaded."""
    if init_from is not None and not Path(init_from).is_file():
        raise GSFConfigError(f"model.init_from={os.fspath(init_from)!r} is not a file (a checkpoint to fine-tune from)")
    choice = normalise_pretrained(pretrained)
    if init_from is not None or choice == "none":
        return
    if choice == "imagenet":
        weight_file(backbone)
    elif not Path(choice).is_file():
        raise GSFConfigError(f"model.pretrained={choice!r} is neither 'imagenet', 'none' nor an existing weight file")


def imagenet_weights_path(backbone: str) -> Path:
    """The local path of ``backbone``'s ImageNet file: from the torch hub cache, else downloaded there with
    its hash checked. With ``GSF_OFFLINE=1``, or when the download fails, a :class:`GSFCheckpointError`
    names the file, the URL and the folder to put it in."""
    entry = weight_file(backbone)
    folder = torch_hub_checkpoint_dir()
    path = folder / entry.file_name
    if path.is_file():
        return path
    where = (f"ImageNet weights of {backbone} ({entry.file_name}) are not in the torch hub cache {folder}: "
             f"download {entry.url} into that folder (or set TORCH_HOME), or set pretrained: none")
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise GSFCheckpointError(f"{where} ({OFFLINE_ENV} is set, so nothing was downloaded)")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        download_url_to_file(entry.url, os.fspath(path), hash_prefix=entry.hash_prefix, progress=False)
    except (urllib.error.URLError, OSError, RuntimeError) as error:  # offline, refused, or a hash mismatch
        raise GSFCheckpointError(f"{where}; the download failed: {error}") from error
    return path


def backbone_state_from_file(state: Mapping[str, torch.Tensor], backbone: nn.Module, *, entry: WeightFile,
                             source: str) -> dict[str, torch.Tensor]:
    """``state`` (a weight file of ``entry``'s format) as a complete state dict of ``backbone``.

    Drops the classifier, applies ``entry.renames``, squeezes the leading 1 of 1-D tensors stored as (1, C)
    (Inception format), keeps ``backbone``'s own ``num_batches_tracked`` where the file has none. Any other
    missing, unexpected or misshapen key is a :class:`GSFCheckpointError` naming ``source`` and the keys.
    """
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GSFCheckpointError(f"{source} is not a state dict of tensors (a {entry.format}-format weight file)")
    ours = backbone.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith(entry.classifier):
            continue
        for old, new in entry.renames.items():
            if key.startswith(old):
                key = new + key[len(old):]
        target = ours.get(key)
        if target is not None and entry.format == "inception" and value.dim() == 2 and value.shape[0] == 1 \
                and target.dim() == 1:
            value = value[0]
        converted[key] = value
    diff = state_dict_diff(ours, converted, may_be_missing=lambda key: key.endswith("num_batches_tracked"))
    if diff:
        raise GSFCheckpointError(
            f"{source} does not fit backbone {type(backbone).__name__} (only the classifier "
            f"{'/'.join(p.rstrip('.') for p in entry.classifier)} may differ): {diff.describe(6)}")
    for key in set(ours) - set(converted):  # BN counters absent from Inception files
        converted[key] = ours[key]
    return converted


def load_pretrained_backbone(backbone_module: nn.Module, *, backbone: str, pretrained) -> str:
    """Load the starting weights ``pretrained`` (``"imagenet"``, ``"none"`` or a weight-file path in the
    backbone's release format) into ``backbone_module`` (backbone ``backbone``, before temporal modules are
    inserted). Returns what was loaded: ``"none"`` or the file's path."""
    choice = normalise_pretrained(pretrained)
    if choice == "none":
        return "none"
    entry = weight_file(backbone)
    path = imagenet_weights_path(backbone) if choice == "imagenet" else Path(choice)
    state = read_checkpoint(path)
    converted = backbone_state_from_file(state, backbone_module, entry=entry, source=str(path))
    with torch.no_grad():
        backbone_module.load_state_dict(converted, strict=True)
    return str(path)


# --- checkpoints: the authors' release and fine-tuning ---------------------------------------------------

def authors_key_to_ours(key: str) -> str:
    """Map a state-dict key of the authors' release (docs/gsf-operator.md section 2) to this suite's VideoClassifier.

    ``module.base_model.<backbone key>`` -> ``backbone.<backbone key>`` and ``module.new_fc.*`` -> ``head.*``.
    In the release's ResNet, the GSF module of a bottleneck is the child ``gsf``; here it is the child
    ``temporal_after_conv3`` (``temporal_after_conv2`` in a BasicBlock).
    """
    if key.startswith("module."):
        key = key[len("module."):]
    if key.startswith("new_fc."):
        return "head." + key[len("new_fc."):]
    if key.startswith("base_model."):
        return "backbone." + key[len("base_model."):]
    return key


def convert_authors_state_dict(state: dict[str, torch.Tensor], *, basic_block: bool = False) -> dict[str, torch.Tensor]:
    """Rename every key of an authors' state dict to ours (see :func:`authors_key_to_ours`)."""
    resnet_gsf = ".temporal_after_conv2." if basic_block else ".temporal_after_conv3."
    converted = {}
    for key, value in state.items():
        ours = authors_key_to_ours(key)
        if ours.startswith("backbone.layer") and ".gsf." in ours:
            ours = ours.replace(".gsf.", resnet_gsf)
        converted[ours] = value
    return converted


def _is_head(key: str) -> bool:
    return key.startswith(("head.", "heads."))


def init_from_checkpoint(model: nn.Module, path: str | os.PathLike, *, basic_block: bool = False) -> list[str]:
    """Start ``model`` (a :class:`~gsf.models.video.VideoClassifier`) from a checkpoint to fine-tune it:
    one of this suite's (``{"format", "model": state dict, ...}``) or an authors' release checkpoint
    (``model_state_dict`` with ``module.base_model.`` keys; ``basic_block`` for ResNet-18/34).

    Every backbone tensor must fit. The head is taken when its shape matches, and kept as ``model``'s
    fresh initialisation when the class count differs (Kinetics-400 -> Something-Something, say). Returns
    the keys left at their initialisation (empty, or the head's).
    """
    checkpoint = read_checkpoint(path)
    if not isinstance(checkpoint, Mapping):
        raise GSFCheckpointError(f"{path} holds no state dict")
    if isinstance(checkpoint.get("model"), Mapping):
        state = dict(checkpoint["model"])
    else:
        state = checkpoint.get("model_state_dict", checkpoint.get("state_dict", checkpoint))
        if not isinstance(state, Mapping) or not state:
            raise GSFCheckpointError(f"{path} holds no model state dict (expected 'model' or 'model_state_dict')")
        state = convert_authors_state_dict(dict(state), basic_block=basic_block)
    ours = model.state_dict()
    heads_differ = sorted(k for k in set(ours) & set(state) if _is_head(k) and state[k].shape != ours[k].shape)
    state = {k: v for k, v in state.items() if k not in heads_differ}
    diff = state_dict_diff(ours, state, may_be_missing=lambda key: _is_head(key) and bool(heads_differ))
    if diff:
        raise GSFCheckpointError(
            f"{path} does not fit the configured model (only the head may differ, in its class count): "
            f"{diff.describe(6)}")
    kept = sorted(set(ours) - set(state))
    merged = {**ours, **state}
    with torch.no_grad():
        model.load_state_dict(merged, strict=True)
    return kept
