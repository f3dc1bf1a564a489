"""Export a ``gsf train`` checkpoint to ONNX, TorchScript or a torch.export ExportedProgram.

The exported graph takes one view, float32 ``(1, T, 3, S, S)`` (T and S fixed at export), and returns the
logits ``(1, K)``. Each file carries the :class:`gsf.inference.predict.Preprocessing` prediction needs
(class names, frames, input size, normalisation, default views) as JSON: ONNX ``metadata_props``
(``gsf.prediction``), TorchScript and ExportedProgram extra files (``gsf_prediction.json``), so
``gsf predict --model FILE`` needs nothing else.

GSF's fused learned-gate path (hand-written autograd Functions, docs/gsf-operator.md section 1) is opaque to tracers, so
the model is exported through its composed path (standard operators, ``gsf.ops.set_gsf_path``), which
computes the same function. Before a file is accepted it is loaded back through the same code as
``gsf predict --model`` and compared with the eager model, on its default path, on a clip other than the one
traced: above the tolerance the file is removed and the export fails.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import torch

from gsf.errors import GSFCheckpointError, GSFConfigError
from gsf.inference.predict import (
    METADATA_FILE,
    METADATA_KEY,
    MODEL_FILE_FORMATS,
    Preprocessing,
    load_checkpoint_model,
    load_model_file,
)

EXPORT_FORMATS = MODEL_FILE_FORMATS
# Largest accepted |exported - eager| logit difference, relative to max(1, largest |eager logit|).
DEFAULT_TOLERANCE = 1e-4
ONNX_OPSET = 17


@dataclasses.dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float  # largest |exported - eager| logit on the check clip
    logit_scale: float  # max(1, largest |eager logit|): the tolerance is relative to it
    tolerance: float
    preprocessing: Preprocessing


def example_clip(prep: Preprocessing, *, seed: int) -> torch.Tensor:
    """A normalised-scale random view ``(1, T, 3, S, S)`` (standard normal, seeded)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, prep.num_frames, 3, prep.input_size, prep.input_size, generator=generator)


def _write_onnx(model: torch.nn.Module, example: torch.Tensor, out: Path, metadata: str) -> None:
    import onnx

    # The TorchScript-based exporter: it traces (so GSF takes its composed path on its own) in about a second
    # on CPU; the dynamo exporter takes tens of seconds for the same graph.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning, torch.jit.TracerWarning))
        torch.onnx.export(model, (example,), str(out), dynamo=False, input_names=["video"],
                          output_names=["logits"], opset_version=ONNX_OPSET)
    graph = onnx.load(str(out))
    entry = graph.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata
    onnx.checker.check_model(graph)
    onnx.save(graph, str(out))


def _write_torchscript(model: torch.nn.Module, example: torch.Tensor, out: Path, metadata: str) -> None:
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export, but still the format most C++ runtimes load
        warnings.simplefilter("ignore", (FutureWarning, torch.jit.TracerWarning))
        traced = torch.jit.trace(model, (example,), check_trace=False)
        torch.jit.save(traced, str(out), _extra_files={METADATA_FILE: metadata})


def _write_exported_program(model: torch.nn.Module, example: torch.Tensor, out: Path, metadata: str) -> None:
    program = torch.export.export(model, (example,))
    torch.export.save(program, str(out), extra_files={METADATA_FILE: metadata})


WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript, "exported-program": _write_exported_program}


def export_model(checkpoint: str | os.PathLike, *, format: str, out: str | os.PathLike, frames: int | None = None,
                 tolerance: float = DEFAULT_TOLERANCE, seed: int = 0) -> ExportResult:
    """Export ``checkpoint`` to ``out`` in ``format`` (``EXPORT_FORMATS``), ``frames`` frames per clip
    (default: the training configuration's), checked against the eager model (see the module docstring)."""
    from gsf.ops import set_gsf_path

    if format not in WRITERS:
        raise GSFConfigError(f"--format {format!r} is not one of {list(WRITERS)}")
    if frames is not None and frames < 1:
        raise GSFConfigError(f"--frames {frames}: need at least 1 frame")
    if not tolerance > 0:
        raise GSFConfigError(f"--tolerance {tolerance}: must be positive")
    out = Path(out)
    model, prep = load_checkpoint_model(checkpoint)
    if frames is not None:
        prep = dataclasses.replace(prep, num_frames=frames)
    out.parent.mkdir(parents=True, exist_ok=True)
    set_gsf_path(model, "composed")
    try:
        with torch.no_grad():
            WRITERS[format](model, example_clip(prep, seed=seed), out, prep.to_json())
    except Exception as err:  # exporters raise many types; the message names the format and the model
        out.unlink(missing_ok=True)
        raise GSFCheckpointError(f"exporting {checkpoint} to {format} failed: {type(err).__name__}: {err}") from err
    set_gsf_path(model, "auto")
    forward, saved = load_model_file(out)
    check = example_clip(prep, seed=seed + 1)
    with torch.inference_mode():
        eager, exported = model(check).float(), forward(check).float()
    diff = float((exported - eager).abs().max())
    scale = max(1.0, float(eager.abs().max()))
    if saved != prep or not diff <= tolerance * scale:
        out.unlink(missing_ok=True)
        what = "metadata differs from the model's" if saved != prep else \
            f"logits differ from the eager model's by up to {diff:.3g} (> {tolerance:g} x {scale:.3g})"
        raise GSFCheckpointError(f"{format} export of {checkpoint} rejected and removed: {what}")
    return ExportResult(out, format, diff, scale, tolerance, prep)
