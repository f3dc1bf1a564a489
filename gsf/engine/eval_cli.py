"""``gsf eval CONFIG --checkpoint PATH [--views CLIPSxCROPS] [--set section.key=value ...]``."""

from __future__ import annotations

import argparse
import json
import sys


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
    from experiments.run_logging import add_tracking_arguments

    add_tracking_arguments(parser, run_id=True)


def run(args) -> int:
    from gsf.engine.config import load_config
    from gsf.engine.evaluate import evaluate_checkpoint
    from gsf.engine.train_cli import setup_logging
    from gsf.errors import GSFError

    setup_logging()
    try:
        config = load_config(args.config, args.overrides)
        result = evaluate_checkpoint(config, args.checkpoint, views=args.views, split=args.split, out_dir=args.out)
        from experiments.run_logging import eval_to_tracking

        eval_to_tracking(config, result, args)  # MLflow when a tracking URI is set
    except GSFError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0
