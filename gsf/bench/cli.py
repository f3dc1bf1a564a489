"""``gsf bench``: speed benchmarks. Each benchmark is a sub-subcommand whose module exposes
``configure_parser(parser)`` and ``run(args) -> int``; add new ones to ``BENCHMARKS``. A benchmark of the sweep
machinery lives in ``experiments`` (the layer it times): like ``gsf.cli.SUBCOMMANDS``, this table may name a
module of a layer above ``gsf``; its modules are imported only when ``gsf bench`` runs."""

from __future__ import annotations

import argparse
import importlib

# benchmark -> (module, one-line help)
BENCHMARKS: dict[str, tuple[str, str]] = {
    "data": ("gsf.bench.data", "data-loading throughput (frames vs videos, loader workers, T)"),
    "fingerprint": ("gsf.bench.fingerprint", "what the data fingerprint of a run costs on many small files"),
    "model": ("gsf.bench.model", "model inference/training-step time and memory vs TSN (TSN/TSM/GSM/GSF)"),
    "overhead": ("experiments.bench_overhead", "gsf sweep vs gsf train for one trial, Ray start-up, loader vs model rate"),
    "train": ("gsf.bench.train", "a training epoch end to end, loader in the loop: TSN vs GSF, where the time goes"),
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    sub.required = True
    for name, (module_name, help_text) in BENCHMARKS.items():
        child = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        module.configure_parser(child)
        child.set_defaults(_bench_run=module.run)


def run(args) -> int:
    return int(args._bench_run(args) or 0)
