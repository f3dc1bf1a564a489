"""``gsf export --checkpoint CKPT --format onnx|torchscript|exported-program --out FILE [--frames T]``."""

from __future__ import annotations

import argparse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    from gsf.inference.export import DEFAULT_TOLERANCE, EXPORT_FORMATS

    parser.add_argument("--checkpoint", required=True, help="a checkpoint of `gsf train`")
    parser.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                        help="onnx (run by onnxruntime), torchscript (torch.jit) or exported-program (torch.export)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    parser.add_argument("--frames", type=int, default=None, metavar="T",
                        help="frames per clip of the exported graph (default: the training configuration's)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="largest accepted |exported - eager| logit, relative to max(1, |eager logit|) "
                             f"(default {DEFAULT_TOLERANCE:g})")


def run(args) -> int:
    from gsf.inference.export import export_model

    result = export_model(args.checkpoint, format=args.format, out=args.out, frames=args.frames,
                          tolerance=args.tolerance)
    prep = result.preprocessing
    print(f"largest |exported - eager| logit difference {result.max_abs_diff:.3g} (tolerance "
          f"{result.tolerance:g} x {result.logit_scale:.3g}); wrote {result.path} ({result.format}: one view "
          f"(1, {prep.num_frames}, 3, {prep.input_size}, {prep.input_size}) -> {len(prep.class_names)} logits; "
          f"default views {prep.views})")
    return 0
