"""Classify video files with a trained model, preprocessed exactly as the model was tested (docs/recipe.md).

A video file (anything PyAV decodes: mp4, webm, mkv, avi ...) or a folder of JPEG frames (a known frame
template, as in the releases) goes through the data package's own test pipeline: TSN test sampling of
``num_frames`` frames per clip (:func:`gsf.data.segment_offsets`), the test views of
:func:`gsf.data.make_transform` (shorter side scaled, ``input_size`` crops, the backbone's normalisation),
one forward pass per view, and the views averaged as ``gsf eval`` averages them (raw logits, or softmax
scores with ``data.test_softmax``); the scores shown are the softmax of that average. The 3-crop geometry
(``data.test_three_crops``) and the test clips (``data.test_sampling``) are the model's configuration's.

A model comes from one of:

- a checkpoint of ``gsf train`` (:meth:`Predictor.from_checkpoint`): the eager model rebuilt from the
  configuration the checkpoint carries; class names from the data set's label file named by that
  configuration (``data.dataset``, ``data.root``), or from the checkpoint's ``class_names`` entry;
- a file of ``gsf export`` (:meth:`Predictor.from_model_file`): ONNX (run by onnxruntime), TorchScript or a
  torch.export ExportedProgram, each carrying :class:`Preprocessing` in its metadata;
- an MLflow model URI (``models:/NAME/VERSION``, ``runs:/RUN/model``, ``models:/m-...``) of a model logged by
  :func:`experiments.run_logging.log_best_model` (ONNX flavour, the same metadata).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from gsf.errors import GSFCheckpointError, GSFConfigError, GSFDataError

log = logging.getLogger(__name__)

# Where an exported model keeps its Preprocessing (JSON): the ONNX metadata_props key (also the key in an
# MLflow model's metadata) and the extra file of TorchScript and ExportedProgram archives.
METADATA_KEY = "gsf.prediction"
METADATA_FILE = "gsf_prediction.json"
METADATA_VERSION = 1
MODEL_FILE_FORMATS = ("onnx", "torchscript", "exported-program")
MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")

Forward = Callable[[torch.Tensor], torch.Tensor]  # one view (1, T, 3, S, S) float32 -> logits (1, K)


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What prediction needs besides the network, as the model was trained and tested (docs/recipe.md).

    Attributes:
        class_names: class names by label index (from the data set's label file).
        num_frames: T, frames per clip (TSN segments) the model takes.
        input_size: side of the square crops, pixels.
        normalisation: ``"resnet"`` (RGB, ImageNet mean/std) or ``"inception"`` (BGR minus mean).
        views: default test views, CLIPSxCROPS.
        three_crop: geometry of 3-crop views (``data.test_three_crops``: ``release`` or ``full_res``).
        test_sampling: test clips (``data.test_sampling``: ``tsn`` or ``dense``).
        softmax: average the views' softmax scores instead of their logits (``data.test_softmax``).
        model: a one-line description (backbone, temporal module), shown to users only.
    """

    class_names: tuple[str, ...]
    num_frames: int
    input_size: int
    normalisation: str
    views: str
    three_crop: str = "release"
    test_sampling: str = "tsn"
    softmax: bool = False
    model: str = ""

    def to_json(self) -> str:
        return json.dumps({"version": METADATA_VERSION, **dataclasses.asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str) -> Preprocessing:
        """Parse :meth:`to_json` output; an error names ``source`` and the field at fault."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as err:
            raise GSFCheckpointError(f"{source}: its {METADATA_KEY} metadata is not JSON ({err})") from err
        if not isinstance(data, dict) or data.get("version") != METADATA_VERSION:
            raise GSFCheckpointError(f"{source}: {METADATA_KEY} metadata of an unknown version "
                                     f"{data.get('version') if isinstance(data, dict) else data!r}")
        try:
            prep = cls(class_names=tuple(str(n) for n in data["class_names"]), num_frames=int(data["num_frames"]),
                       input_size=int(data["input_size"]), normalisation=str(data["normalisation"]),
                       views=str(data["views"]), three_crop=str(data["three_crop"]),
                       test_sampling=str(data["test_sampling"]), softmax=bool(data["softmax"]),
                       model=str(data.get("model", "")))
        except (KeyError, TypeError, ValueError) as err:
            raise GSFCheckpointError(f"{source}: {METADATA_KEY} metadata lacks or mangles field {err}") from err
        prep.check(source=source)
        return prep

    def check(self, *, source: str) -> None:
        from gsf.data import NORMALISATIONS

        if not self.class_names:
            raise GSFCheckpointError(f"{source}: no class names")
        if self.num_frames < 1 or self.input_size < 1:
            raise GSFCheckpointError(f"{source}: num_frames {self.num_frames} / input_size {self.input_size} "
                                     "must be positive")
        from gsf.data.sampling import TEST_SAMPLINGS
        from gsf.data.transforms import THREE_CROP_STYLES

        for name, value, valid in (("normalisation", self.normalisation, NORMALISATIONS),
                                   ("three_crop", self.three_crop, THREE_CROP_STYLES),
                                   ("test_sampling", self.test_sampling, TEST_SAMPLINGS)):
            if value not in valid:
                raise GSFCheckpointError(f"{source}: {name} {value!r} is not one of {list(valid)}")
        parse_views(self.views, key=f"{source}: views")


def parse_views(text: str, *, key: str = "--views") -> tuple[int, int]:
    """``"2x3"`` -> ``(2, 3)``, checked by the engine's rule (one source for which views exist)."""
    from gsf.engine.config import parse_views as engine_parse_views

    return engine_parse_views(text, key=key)


def default_views(test_views: str) -> str:
    """The default views of prediction from a configuration's ``data.test_views`` (one protocol, or a
    comma-separated list of them): the protocol with the most views (the paper's 2x3 of ``1x1,2x3``)."""
    protocols = [p.strip() for p in str(test_views).split(",") if p.strip()]
    if not protocols:
        raise GSFConfigError(f"data.test_views={test_views!r} names no CLIPSxCROPS protocol")
    sizes = [parse_views(p, key="data.test_views") for p in protocols]
    return protocols[max(range(len(protocols)), key=lambda i: (sizes[i][0] * sizes[i][1], -i))]


# --- from a checkpoint ------------------------------------------------------------------------------------

def class_names_of(config, checkpoint: dict, *, num_classes: int, source: str) -> tuple[str, ...]:
    """Class names of a checkpoint's model: its ``class_names`` entry, else the label file of the data set
    its configuration names (read with that data set's reader). Without either (data set not on this
    machine), ``class <i>`` with a warning."""
    saved = checkpoint.get("class_names")
    if saved:
        names = tuple(str(n) for n in saved)
    else:
        from gsf.data.readers import READERS

        d = config.data
        reader = READERS.get(d.dataset)
        try:
            if reader is None:  # a TSN list names classes by index only
                raise GSFDataError(f"data set format {d.dataset!r} has no class names")
            names = tuple(str(n) for n in reader(d.root, d.val_split)[1])
        except (GSFConfigError, GSFDataError) as err:  # no label file, or a split the reader does not know
            log.warning("%s: class names unavailable (%s); classes are named by index", source, err)
            names = tuple(f"class {i}" for i in range(num_classes))
    if len(names) != num_classes:
        raise GSFCheckpointError(f"{source}: the model has {num_classes} classes but its label file names "
                                 f"{len(names)}")
    return names


def _head_classes(state: dict, *, source: str) -> int:
    weight = state.get("head.weight")
    if weight is None:
        heads = sorted({k.split(".")[1] for k in state if k.startswith("heads.")})
        raise GSFCheckpointError(f"{source}: a model with several heads ({', '.join(heads) or 'none found'}) "
                                 "cannot be used by gsf predict / export (one head only)")
    return int(weight.shape[0])


def load_checkpoint_model(path: str | os.PathLike) -> tuple[torch.nn.Module, Preprocessing]:
    """The eager model (eval mode, CPU) of a ``gsf train`` checkpoint and its :class:`Preprocessing`."""
    from gsf.engine.checkpoint import check_compatible, load_checkpoint
    from gsf.engine.config import TrainConfig, model_kwargs
    from gsf.models import build_model
    from gsf.models.registry import backbone_spec

    path = Path(path)
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint.get("config"), dict) or "model" not in checkpoint:
        raise GSFCheckpointError(f"{path} is not a checkpoint of gsf train (no 'config'/'model' entry); "
                                 "an authors' release checkpoint needs `gsf eval` with a configuration")
    config = TrainConfig.from_dict(checkpoint["config"], source=f"{path} (its config)")
    num_classes = _head_classes(checkpoint["model"], source=str(path))
    model = build_model(**model_kwargs(config, num_classes=num_classes, pretrained=False))
    check_compatible(checkpoint, config.to_dict()["model"], model, path=path)
    model.load_state_dict(checkpoint["model"])
    model.eval()
    m = config.model
    prep = Preprocessing(
        class_names=class_names_of(config, checkpoint, num_classes=num_classes, source=str(path)),
        num_frames=config.data.num_frames, input_size=config.data.input_size,
        normalisation=backbone_spec(m.backbone).normalisation, views=default_views(config.data.test_views),
        three_crop=config.data.test_three_crops, test_sampling=config.data.test_sampling,
        softmax=config.data.test_softmax,
        model=f"{m.backbone} {m.temporal}" + (f" channel_fraction={m.channel_fraction}" if m.temporal == "gsf" else ""),
    )
    prep.check(source=str(path))
    return model, prep


# --- from an exported file or an MLflow model -------------------------------------------------------------

def model_file_format(path: Path) -> str:
    """``"onnx"``, ``"torchscript"`` or ``"exported-program"``, read from the file's contents."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(n.endswith("/archive_format") for n in names):
            return "exported-program"
        if any("/code/" in n or n.endswith("/constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("/data.pkl") for n in names):
            raise GSFCheckpointError(f"{path} is a PyTorch checkpoint, not an exported model: use --checkpoint")
        raise GSFCheckpointError(f"{path}: a zip archive that is neither TorchScript nor an ExportedProgram")
    import onnx

    try:
        onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf raises DecodeError and others for foreign bytes
        raise GSFCheckpointError(f"{path} is not an ONNX, TorchScript or ExportedProgram file ({err})") from err
    return "onnx"


def _onnx_model(path: Path, *, source: str) -> tuple[Forward, Preprocessing]:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for invalid graphs
        raise GSFCheckpointError(f"{source}: onnxruntime cannot load it ({err})") from err
    metadata = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in metadata:
        raise GSFCheckpointError(f"{source}: no {METADATA_KEY} metadata (not written by gsf export?)")
    input_name = session.get_inputs()[0].name

    def forward(view: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: view.numpy()})[0])

    return forward, Preprocessing.from_json(metadata[METADATA_KEY], source=source)


def _torch_archive_model(path: Path, kind: str, *, source: str) -> tuple[Forward, Preprocessing]:
    extra = {METADATA_FILE: ""}
    try:
        if kind == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
                module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
            module.eval()
        else:
            module = torch.export.load(str(path), extra_files=extra).module()
    except Exception as err:  # torch raises RuntimeError and others for damaged archives
        raise GSFCheckpointError(f"{source}: cannot load this {kind} file ({err})") from err
    if not extra[METADATA_FILE]:
        raise GSFCheckpointError(f"{source}: no {METADATA_FILE} in the archive (not written by gsf export?)")
    text = extra[METADATA_FILE]
    return module, Preprocessing.from_json(text.decode() if isinstance(text, bytes) else text, source=source)


def is_mlflow_uri(location: str) -> bool:
    return str(location).startswith(MLFLOW_SCHEMES)


def _mlflow_model(uri: str) -> tuple[Forward, Preprocessing]:
    """Download an MLflow model (``models:/NAME/VERSION`` ...) and load its ONNX file; the tracking and
    registry URIs are MLflow's (``MLFLOW_TRACKING_URI``, or :func:`mlflow.set_tracking_uri`)."""
    import mlflow
    import yaml
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="gsf-predict-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except MlflowException as err:
            raise GSFCheckpointError(f"MLflow model {uri} cannot be fetched from {mlflow.get_tracking_uri()}: "
                                     f"{err.message}") from err
        mlmodel = local / "MLmodel"
        if not mlmodel.is_file():
            raise GSFCheckpointError(f"MLflow model {uri} has no MLmodel file (is it a model?)")
        flavours = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors", {})
        if "onnx" not in flavours:
            raise GSFCheckpointError(f"MLflow model {uri} has flavours {sorted(flavours)}, not the onnx flavour "
                                     "that gsf logs")
        # the session holds the graph in memory, so the downloaded copy can go
        return _onnx_model(local / flavours["onnx"]["data"], source=uri)


def load_model_file(location: str | os.PathLike) -> tuple[Forward, Preprocessing]:
    """The forward function and :class:`Preprocessing` of an exported file or an MLflow model URI."""
    if is_mlflow_uri(str(location)):
        return _mlflow_model(str(location))
    path = Path(location)
    if not path.is_file():
        raise GSFCheckpointError(f"model file {path} does not exist")
    kind = model_file_format(path)
    if kind == "onnx":
        return _onnx_model(path, source=str(path))
    return _torch_archive_model(path, kind, source=str(path))


# --- reading a video ---------------------------------------------------------------------------------------

def video_record(path: str | os.PathLike):
    """A :class:`gsf.data.VideoRecord` (label -1) of a video file or a folder of JPEG frames named by one of
    the releases' templates; the frame count is the container's, or decoded when the container has none."""
    from gsf.data.io import VideoFile
    from gsf.data.readers import detect_frame_template
    from gsf.data.records import FRAMES, VIDEO, VideoRecord

    path = Path(path)
    if path.is_dir():
        return VideoRecord(path.name, path, -1, str(path), FRAMES, 1, None, detect_frame_template(path))
    with VideoFile(path) as video:
        count = video.num_frames
    if count < 1:
        with VideoFile(path) as video:
            count = video.count_frames()
    if count < 1:
        raise GSFDataError(f"video {path} has no frames")
    return VideoRecord(path.stem, path, -1, str(path), VIDEO, 0, count)


def read_views(path: str | os.PathLike, preprocessing: Preprocessing, views: str) -> torch.Tensor:
    """The test views of one video, float32 ``(clips * crops, T, 3, S, S)`` (clip-major), through the data
    set class and transform training tested with."""
    from gsf.data import VideoDataset, make_transform

    clips, crops = parse_views(views)
    dataset = VideoDataset(
        [video_record(path)], num_frames=preprocessing.num_frames, mode="test", num_clips=clips,
        test_sampling=preprocessing.test_sampling,
        transform=make_transform("test", preprocessing.input_size, num_crops=crops,
                                 normalisation=preprocessing.normalisation, three_crop=preprocessing.three_crop),
    )
    try:
        return dataset[0]["video"]
    except GSFDataError as err:  # the data set prefixes "sample 0 (...)"; the cause names the file
        raise GSFDataError(str(err.__cause__ or err)) from err


# --- prediction ----------------------------------------------------------------------------------------------

def top_k(logits: torch.Tensor, class_names: Sequence[str], k: int) -> list[dict]:
    """``[{"label", "index", "score"}, ...]`` best first: the softmax of video-level ``logits`` (K,)."""
    scores = logits.float().softmax(dim=-1)
    values, indices = scores.topk(min(k, scores.numel()))
    return [{"label": class_names[i], "index": i, "score": float(v)} for v, i in zip(values.tolist(), indices.tolist())]


class Predictor:
    """A model with its preprocessing: ``predict(path) -> top-k classes``.

    ``forward`` maps one view (1, T, 3, S, S) float32 to logits (1, K); exported models have that fixed
    shape, so every model is fed one view at a time.
    """

    def __init__(self, forward: Forward, preprocessing: Preprocessing, *, source: str) -> None:
        self.forward, self.preprocessing, self.source = forward, preprocessing, source

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike) -> Predictor:
        model, prep = load_checkpoint_model(path)
        return cls(model, prep, source=str(path))

    @classmethod
    def from_model_file(cls, location: str | os.PathLike) -> Predictor:
        forward, prep = load_model_file(location)
        return cls(forward, prep, source=str(location))

    @torch.inference_mode()
    def logits(self, path: str | os.PathLike, *, views: str | None = None) -> torch.Tensor:
        """Video-level logits (K,): the views' logits averaged as ``gsf eval`` averages them (raw logits, or
        the log of the mean softmax score with ``softmax``)."""
        from gsf.engine.evaluate import _average_views

        clips = read_views(path, self.preprocessing, views or self.preprocessing.views)
        outputs = torch.cat([self.forward(view.unsqueeze(0)).float().reshape(1, -1) for view in clips])
        logits = _average_views(outputs, 1, len(clips), self.preprocessing.softmax).reshape(-1)
        if logits.numel() != len(self.preprocessing.class_names):
            raise GSFCheckpointError(f"{self.source}: the model gave {logits.numel()} logits for "
                                     f"{len(self.preprocessing.class_names)} class names")
        return logits

    def predict(self, path: str | os.PathLike, *, views: str | None = None, k: int = 5) -> list[dict]:
        """The ``k`` best classes of a video file or frame folder: ``[{"label", "index", "score"}, ...]``."""
        return top_k(self.logits(path, views=views), self.preprocessing.class_names, k)
