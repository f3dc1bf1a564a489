"""``gsf eval CONFIG --checkpoint PATH [--views CLIPSxCROPS] [--set section.key=value ...]``.

The command lives in ``experiments`` because the test metrics are logged to MLflow as a sweep trial's are
(:mod:`experiments.run_logging`); the evaluation itself is :func:`gsf.engine.evaluate_checkpoint`."""

from __future__ import annotations

import argparse
import json

from experiments.run_logging import add_tracking_arguments


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML configuration of the model and data set")
    parser.add_argument("--checkpoint", required=True,
                        help="a checkpoint of `gsf train`, or an authors' release checkpoint")
    parser.add_argument("--views", default=None, help="CLIPSxCROPS, e.g. 1x1 or 2x3 (default: data.test_views)")
    parser.add_argument("--split", default=None, help="split to test on (default: data.val_split)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one key (value parsed as YAML); repeatable")
    parser.add_argument("--out", default=None,
                        help="folder for scores/test_<views>.csv (default: the checkpoint's run folder)")
    add_tracking_arguments(parser, run_id=True)


def run(args) -> int:
    from experiments.run_logging import eval_to_tracking
    from gsf.engine.config import load_config
    from gsf.engine.evaluate import evaluate_checkpoint

    config = load_config(args.config, args.overrides)
    result = evaluate_checkpoint(config, args.checkpoint, views=args.views, split=args.split, out_dir=args.out)
    # MLflow when a tracking URI is set
    eval_to_tracking(config, result, checkpoint=args.checkpoint, tracking_uri=args.tracking_uri, run_id=args.run_id,
                     split=args.split, out_dir=args.out, experiment=args.experiment)
    print(json.dumps(result, indent=1))
    return 0
