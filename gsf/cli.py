"""The ``gsf`` console command.

Each subcommand's entry module lives in the layer of the code it drives (``gsf``, ``experiments`` or
``analysis``; the order is in ``tests/test_import_graph.py``) and exposes two functions:
``configure_parser(parser)`` adds its arguments and ``run(args) -> int`` executes it. The modules are
imported only when their subcommand is chosen, so ``gsf --help`` stays fast and importing one
subsystem never pulls in Ray or MLflow by accident.

This module is the one place that sets up logging and turns a :class:`gsf.errors.GSFError` into one line
``gsf COMMAND: error: MESSAGE`` on stderr and exit status 2 (:func:`run_command`): a ``run`` raises, it does not
print its own errors.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable

from gsf.errors import GSFError

# subcommand -> (module, one-line help). Modules are imported lazily.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "flops": ("gsf.flops_cli", "GMACs and parameters of a video model, per view"),
    "models": ("gsf.models.cli", "list the registered model variants"),
    "data": ("gsf.data.cli", "synthesise, validate and inspect data sets"),
    "train": ("experiments.train_cli", "train one model from a configuration"),
    "eval": ("experiments.eval_cli", "multi-view evaluation of a checkpoint"),
    "predict": ("gsf.inference.predict_cli", "classify video files with a checkpoint, exported file or MLflow model"),
    "export": ("gsf.inference.export_cli", "export a checkpoint to ONNX, TorchScript or an ExportedProgram"),
    "bench": ("gsf.bench.cli", "speed and memory benchmarks"),
    "sweep": ("experiments.sweep_cli", "run an ablation grid with Ray Tune, tracked in MLflow"),
    "ui": ("experiments.ui_cli", "start the MLflow UI on 127.0.0.1"),
    "report": ("analysis.report_cli", "tables and figures from MLflow runs"),
    "demo": ("analysis.demo_cli", "the embedded-default main job: synth data, demo sweep, report"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="gsf", description="GSF Bench: Gate-Shift-Fuse ablations")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    chosen = next((a for a in (argv or []) if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.configure_parser(sub)
            sub.set_defaults(_run=module.run)
    return parser


LOGGED_PACKAGES = ("gsf", "experiments", "analysis")  # their INFO records are shown; other libraries' from WARNING


def setup_logging() -> None:
    """Log records on stderr with their time and logger: this project's from INFO, other libraries' from
    WARNING. A process that already has a root handler (an embedding program, pytest) keeps its own set-up."""
    if logging.getLogger().handlers:
        return
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for package in LOGGED_PACKAGES:
        logging.getLogger(package).setLevel(logging.INFO)


def run_command(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace, *, prog: str) -> int:
    """``run(args)`` as an exit status: a :class:`gsf.errors.GSFError` (bad input, a missing program, an
    unreachable store) is printed as one line ``PROG: error: MESSAGE`` on stderr, argparse's own form, and
    exits 2 without a traceback. Other exceptions are bugs and keep theirs."""
    try:
        return int(run(args) or 0)
    except GSFError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        code = run_command(args._run, args, prog=f"gsf {args.command}")
        sys.stdout.flush()  # inside the handler: a closed pipe shows here, not in the interpreter's last flush
    except BrokenPipeError:
        # The reader went away (``gsf models | head``): stop quietly, as command-line tools do. Later writes,
        # the interpreter's own flush at exit included, go to /dev/null instead of raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
