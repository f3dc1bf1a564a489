"""``gsf ui [--tracking-uri URI] [--host HOST] [--port PORT] [--study STUDY] [--exit-when-ready]``: the MLflow UI
(:mod:`experiments.ui`) on 127.0.0.1, the address of the study's runs page printed. Ctrl-C stops it."""

from __future__ import annotations

import argparse
import subprocess


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: sqlite:///<working folder>/mlflow.db)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--study", default=None, help="study (MLflow experiment) whose runs page to print "
                                                      "(default: the most recently active one)")
    parser.add_argument("--exit-when-ready", action="store_true",
                        help="print the address once the server answers, stop it and exit (for checks)")


def run(args: argparse.Namespace) -> int:
    from experiments import tracking
    from experiments.ui import server_command, stop_server, study_urls, wait_ready

    uri = args.tracking_uri or tracking.default_tracking_uri()
    tracking.preflight(uri)
    urls = study_urls(uri, args.host, args.port, args.study)
    process = subprocess.Popen(server_command(uri, args.host, args.port))
    try:
        wait_ready(process, f"http://{args.host}:{args.port}")
        print(f"MLflow UI: {urls['table']}", flush=True)
        if "charts" in urls:
            print(f"charts: {urls['charts']}", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: bound to {args.host}: anyone who can reach this port can read and change the runs",
                  flush=True)
        if not args.exit_when_ready:
            process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(process, timeout=15)
    return 0
