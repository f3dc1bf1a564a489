"""``gsf predict (--checkpoint CKPT | --model FILE_OR_URI) [--views CLIPSxCROPS] [--top-k K] [--json] VIDEO...``."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys


def configure_parser(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a checkpoint of `gsf train` (class names from its data set's label file)")
    source.add_argument("--model", metavar="FILE_OR_URI",
                        help="a file of `gsf export` (.onnx, TorchScript, ExportedProgram) or an MLflow model URI "
                             "(models:/NAME/VERSION, runs:/RUN_ID/model)")
    parser.add_argument("--views", default=None, metavar="CLIPSxCROPS",
                        help="test views averaged per video (default: the model's, e.g. 2x3)")
    parser.add_argument("--top-k", type=int, default=5, metavar="K", help="classes shown per video (default 5)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON list: [{"video": ..., "top_k": [{"label", "index", "score"}, ...]}, ...]')
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking/registry URI for models:/ URIs (default: $MLFLOW_TRACKING_URI)")
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (mp4, webm, mkv, avi) or frame folders")


def run(args) -> int:
    from tqdm import tqdm

    from gsf.errors import GSFConfigError, GSFError
    from gsf.inference.predict import Predictor, is_mlflow_uri, parse_views

    if args.top_k < 1:
        raise GSFConfigError(f"--top-k {args.top_k}: need at least 1")
    if args.views is not None:
        parse_views(args.views)
    if args.checkpoint is not None:
        predictor = Predictor.from_checkpoint(args.checkpoint)
    elif is_mlflow_uri(args.model) and not (args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")):
        # MLflow would fall back to ./mlflow.db, creating it (and ./mlruns) in the working folder.
        raise GSFConfigError(f"{args.model} names a model in an MLflow store, but no store is given: pass "
                             "--tracking-uri URI (the store the sweep logged to, e.g. sqlite:///mlflow.db) or set "
                             "MLFLOW_TRACKING_URI; nothing was looked up or written")
    else:
        from gsf.mlflow_uris import mlflow_uris

        with mlflow_uris(args.tracking_uri, registry=True) if args.tracking_uri else contextlib.nullcontext():
            predictor = Predictor.from_model_file(args.model)
    prep = predictor.preprocessing
    print(f"{predictor.source}: {prep.model or 'model'}, {len(prep.class_names)} classes, {prep.num_frames} frames "
          f"of {prep.input_size} px, views {args.views or prep.views}", file=sys.stderr)
    results, failed = [], []
    bar = tqdm(args.videos, unit="video", file=sys.stderr, disable=None)
    for video in bar:
        try:
            best = predictor.predict(video, views=args.views, k=args.top_k)
        except GSFError as err:
            failed.append(video)
            bar.write(f"error: {video} skipped: {err}", file=sys.stderr)
            continue
        results.append({"video": os.fspath(video), "top_k": best})
        if not args.json:
            bar.write(f"{video}: " + ", ".join(f"{c['label']} ({c['score']:.3f})" for c in best), file=sys.stdout)
    bar.close()
    if args.json:
        print(json.dumps(results, indent=1))
    if failed:
        print(f"error: {len(failed)} of {len(args.videos)} videos could not be read: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0
