"""Backbones, temporal-module insertion, the video classifier and the model registry."""

from gsf.models.authors import from_authors_checkpoint
from gsf.models.registry import BACKBONES, BackboneSpec, backbone_spec, build_model, create_model, list_models, variant_kwargs
from gsf.models.video import VideoClassifier

__all__ = ["BACKBONES", "BackboneSpec", "VideoClassifier", "backbone_spec", "build_model", "create_model",
           "from_authors_checkpoint", "list_models", "variant_kwargs"]
