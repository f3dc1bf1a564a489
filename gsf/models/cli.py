"""``gsf models``: list the registered model variants."""

from __future__ import annotations

import argparse


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet50_*'")


def run(args: argparse.Namespace) -> int:
    from gsf.models import list_models, variant_kwargs

    names = list_models(args.pattern)
    for name in names:
        knobs = ", ".join(f"{k}={v}" for k, v in variant_kwargs(name).items())
        print(f"{name:40s} {knobs}")
    if not names:
        print(f"no model variant matches {args.pattern!r}")
        return 1
    return 0
