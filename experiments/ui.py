"""``gsf ui``: the MLflow UI on 127.0.0.1, with the address of a study's runs page.

The server is ``mlflow server`` started as a subprocess from an argument list (never a shell string), bound
to 127.0.0.1 unless ``--host`` says otherwise; exposing it on a network is a deliberate choice (see
docs/cluster.md). Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.error
import urllib.request

from gsf.errors import GSFConfigError, GSFError, GSFTrackingError

STARTUP_TIMEOUT_S = 60.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: sqlite:///<working folder>/mlflow.db)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--study", default=None, help="study (MLflow experiment) whose runs page to print "
                                                      "(default: the most recently active one)")
    parser.add_argument("--exit-when-ready", action="store_true",
                        help="print the address once the server answers, stop it and exit (for checks)")


def server_command(uri: str, host: str, port: int) -> list[str]:
    """The ``mlflow server`` argument list (artifacts are served from where each experiment keeps them)."""
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host", host,
            "--port", str(port), "--workers", "1"]


def study_url(uri: str, host: str, port: int, study: str | None) -> str:
    """``http://HOST:PORT/#/experiments/<id>/runs`` of ``study`` (or of the latest active experiment)."""
    from experiments import tracking

    client = tracking.client(uri)
    base = f"http://{host}:{port}"
    if study:
        experiment = client.get_experiment_by_name(study)
        if experiment is None:
            raise GSFConfigError(f"no study (MLflow experiment) named {study!r} in {uri}")
    else:
        found = client.search_experiments(order_by=["last_update_time DESC"], max_results=1)
        experiment = found[0] if found else None
    return f"{base}/#/experiments/{experiment.experiment_id}/runs" if experiment else base


def wait_ready(process: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise GSFTrackingError(f"mlflow server exited with code {process.returncode} before answering on {url}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):  # noqa: S310 (http only)
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise GSFTrackingError(f"mlflow server did not answer on {url} within {STARTUP_TIMEOUT_S:.0f} s")


def run(args: argparse.Namespace) -> int:
    from experiments import tracking

    uri = args.tracking_uri or tracking.default_tracking_uri()
    try:
        tracking.preflight(uri)
        url = study_url(uri, args.host, args.port, args.study)
        process = subprocess.Popen(server_command(uri, args.host, args.port))
        try:
            wait_ready(process, f"http://{args.host}:{args.port}")
            print(f"MLflow UI: {url}", flush=True)
            if args.host not in ("127.0.0.1", "localhost", "::1"):
                print(f"warning: bound to {args.host}: anyone who can reach this port can read and change the runs",
                      flush=True)
            if not args.exit_when_ready:
                process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    except GSFError as err:
        print(f"gsf ui: error: {err}", file=sys.stderr)
        return 2
    return 0
