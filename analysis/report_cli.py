"""``gsf report``: tables and figures of every study (MLflow experiment) from the sweep runner's runs.

Writes, under ``--out`` (default ``results/report``)::

    README.md                      index: tracking URI, command, date, every file written
    <study>/table.{csv,md,tex}     one row per variant, mean ± std over seeds, Welch p vs baseline, paper
    <study>/runs.csv               one row per trial run, any status
    <study>/pairs.{csv,md}         within-pair accuracy per run and pair (synthetic benchmark only)
    <study>/figures/*.{png,pdf}    accuracy vs GMACs, ablation bars, accuracy vs frames, training curves,
                                   within-pair accuracy

Tables and figures are pure functions of the tracking store: a second run writes identical bytes (only
README.md carries the date). Each study's folder is also logged as the ``report/`` artifacts of the study's
sweep parent runs, so the MLflow UI opens a sweep's tables, findings and figures from its run page
(``--no-log-artifacts``: the files only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

import pandas as pd

from analysis.findings import findings_markdown, mark_training, study_findings
from gsf.errors import GSFDataError

DEFAULT_URI = "sqlite:///mlflow.db"
DEFAULT_OUT = Path("results/report")
DEFAULT_COMPLEXITY = Path("results/complexity")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI),
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or %(default)s)")
    parser.add_argument("--study", action="append", default=None, metavar="NAME",
                        help="study (MLflow experiment) to report; repeatable; default: every study with trials")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    parser.add_argument("--complexity-dir", type=Path, default=DEFAULT_COMPLEXITY,
                        help="folder of `gsf sweep --complexity-only` CSVs to index (default: %(default)s)")
    parser.add_argument("--paper-dir", type=Path, default=None,
                        help="folder of the paper's numbers (default: results/paper of this checkout)")
    parser.add_argument("--no-figures", action="store_true", help="write tables only")
    parser.add_argument("--no-log-artifacts", action="store_true",
                        help="do not log each study's report as the report/ artifacts of its sweep parent runs")


def slugify(name: str) -> str:
    """A file-system-safe folder name for a study."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "study"


def shown_uri(uri: str, cwd: Path | None = None) -> str:
    """A tracking URI as a committed report shows it: a SQLite or file store inside the working folder
    relative to it (``sqlite:///mlflow.db``), anything else as given, so no machine path is written."""
    cwd = Path.cwd() if cwd is None else cwd
    for scheme in ("sqlite:///", "file://"):
        if uri.startswith(scheme):
            path = Path(uri[len(scheme):])
            if path.is_absolute():
                try:
                    return scheme + path.relative_to(cwd.resolve()).as_posix()
                except ValueError:
                    return uri
    return uri


def command_line(args: argparse.Namespace) -> str:
    parts = ["gsf", "report", "--tracking-uri", shown_uri(args.tracking_uri), "--out", str(args.out)]
    for study in args.study or []:
        parts += ["--study", study]
    if args.complexity_dir != DEFAULT_COMPLEXITY:
        parts += ["--complexity-dir", str(args.complexity_dir)]
    if args.paper_dir is not None:
        parts += ["--paper-dir", str(args.paper_dir)]
    if args.no_figures:
        parts.append("--no-figures")
    return shlex.join(parts)


def _fmt(value, digits: int = 2, scale: float = 1.0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value * scale:.{digits}f}"


def _final_epochs(runs: pd.DataFrame, history: pd.DataFrame) -> dict[str, int]:
    """Last epoch each run reached: the largest step of its per-epoch history, else its ``epoch`` metric."""
    out = {}
    last = history.groupby("run_id")["epoch"].max() if not history.empty else pd.Series(dtype=int)
    for _, run in runs.iterrows():
        if run["run_id"] in last.index:
            out[run["run_id"]] = int(last[run["run_id"]])
        elif not pd.isna(run["last_epoch_metric"]):
            out[run["run_id"]] = int(run["last_epoch_metric"])
    return out


def runs_frame(runs: pd.DataFrame, axis_columns: list[str], final_epochs: dict[str, int],
               variant_of: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per trial run, any status, fixed-format strings (``runs.csv``)."""
    rows = []
    for _, run in runs.iterrows():
        early = run.get("stopped_early", False)
        row = {"variant": (variant_of or {}).get(run["run_id"], ""), "run_name": run["run_name"],
               "seed": "" if pd.isna(run["seed"]) else str(int(run["seed"])),
               "status": "FINISHED (stopped early)" if pd.notna(early) and bool(early) else run["status"]}
        row.update({key: run["axes"].get(key, "") for key in axis_columns})
        row.update({
            "top1_pct": _fmt(run["top1"], scale=100.0), "top5_pct": _fmt(run["top5"], scale=100.0),
            "best_top1_pct": _fmt(run["best_top1"], scale=100.0),
            "best_epoch": "" if pd.isna(run["best_epoch"]) else str(int(run["best_epoch"])),
            "final_epoch": str(final_epochs[run["run_id"]]) if run["run_id"] in final_epochs else "",
            "gmacs_per_view": _fmt(run["gmacs"], 4), "params_m": _fmt(run["params"], 4, 1e-6),
            "config_hash": run["config_hash"], "code_version": run["code_version"], "run_id": run["run_id"],
        })
        rows.append(row)
    return pd.DataFrame(rows)


def _pair_rows(uri: str, study: str, runs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Within-pair accuracy of each finished run that has a score CSV and direction pairs."""
    import json

    from analysis.runs import choose_score_file, download_artifact, score_files
    from analysis.scores import looks_synthetic, pair_accuracy, pairs_for_run, read_scores

    label_of = {run_id: label for label, ids in zip(table["label"], table["run_ids"]) for run_id in ids}
    rows = []
    with tempfile.TemporaryDirectory(prefix="gsf-report-") as tmp:
        for _, run in runs[runs["status"] == "FINISHED"].iterrows():
            params = json.loads(run["params_json"])
            if not looks_synthetic(params, study, run["grid"], run["table"]) and not params.get("data.root"):
                continue
            chosen = choose_score_file(score_files(uri, run["run_id"]))
            if chosen is None:
                continue
            local = download_artifact(uri, run["run_id"], chosen, Path(tmp) / run["run_id"])
            try:
                scores = read_scores(local)
            except GSFDataError:  # e.g. EPIC's two-head format: no single label, no direction pairs
                continue
            if scores["scores"] is not None:
                num_classes = scores["scores"].shape[1]
            else:
                num_classes = int(max(scores["label"].max(), scores["pred"].max())) + 1
                num_classes += num_classes % 2
            pairs = pairs_for_run(params, num_classes, study, run["grid"], run["table"])
            if not pairs:
                continue
            result = pair_accuracy(scores, pairs)
            result.insert(0, "label", label_of.get(run["run_id"], run["run_name"]))
            result.insert(1, "seed", "" if pd.isna(run["seed"]) else str(int(run["seed"])))
            result["pair_name"] = [f"{a} vs {b}" for a, b in zip(result["forward"], result["reversed"])]
            result["score_file"] = chosen
            result["run_id"] = run["run_id"]
            rows.append(result)
    if not rows:
        return pd.DataFrame()
    frame = pd.concat(rows, ignore_index=True)
    return frame.sort_values(["label", "seed", "pair", "run_id"]).reset_index(drop=True)


def _pair_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of within-pair accuracy (percent), variant x pair, and the mean over pairs."""
    rows = []
    for label, part in pairs.groupby("label", sort=True):
        row = {"variant": label}
        for name, cell in part.groupby("pair_name", sort=True):
            values = cell["within_pair"].dropna() * 100.0
            std = "n/a" if len(values) < 2 else f"{values.std(ddof=1):.2f}"
            row[f"pair {name} (%)"] = f"{values.mean():.2f} ± {std} (n={len(values)})" if len(values) else ""
        per_run = part.groupby("run_id")["within_pair"].mean() * 100.0
        std = "n/a" if len(per_run) < 2 else f"{per_run.std(ddof=1):.2f}"
        row["mean over pairs (%)"] = f"{per_run.mean():.2f} ± {std} (n={len(per_run)})"
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def report_study(uri: str, study: str, runs: pd.DataFrame, out: Path, paper: pd.DataFrame | None,
                 figures: bool) -> dict:
    """Write one study's tables (and figures); returns what the index lists."""
    from analysis import tables
    from analysis.runs import metric_history

    folder = out / slugify(study)
    history = metric_history(uri, list(runs["run_id"]))
    runs = mark_training(runs, history)
    final_epochs = _final_epochs(runs, history)
    table = tables.study_table(runs, paper, final_epochs, history)
    table_ids = sorted({t for t in runs["table"] if t})
    title = f"{study}" + (f" (paper table: {', '.join(table_ids)})" if table_ids else "")
    written = tables.write_table(table, folder, "table", title=title)
    label_of = {run_id: label for label, ids in zip(table["label"], table["run_ids"]) for run_id in ids}
    runs_frame(runs, table.attrs["axis_columns"], final_epochs, label_of).to_csv(folder / "runs.csv", index=False,
                                                                                 lineterminator="\n")
    written.append(folder / "runs.csv")
    pairs = _pair_rows(uri, study, runs, table)
    if not pairs.empty:
        columns = ["label", "seed", "pair", "forward", "reversed", "videos", "within_pair", "top1", "method",
                   "score_file", "run_id"]
        text = pairs[columns].copy()
        for column in ("within_pair", "top1"):
            text[column] = [_fmt(v, 4) for v in text[column]]
        text.to_csv(folder / "pairs.csv", index=False, lineterminator="\n")
        summary = _pair_summary(pairs)
        (folder / "pairs.md").write_text(f"# {study}: within-pair accuracy (chance 50 %)\n\n"
                                         + tables.to_markdown(summary), encoding="utf-8")
        written += [folder / "pairs.csv", folder / "pairs.md"]
    findings = study_findings(table, pairs)
    (folder / "findings.md").write_text(f"# {study}: findings\n\nComputed from the runs by `gsf report`; nothing "
                                        f"here is typed by hand.\n\n" + findings_markdown(findings),
                                        encoding="utf-8")
    written.append(folder / "findings.md")
    figure_paths = []
    if figures:
        from analysis import figures as fig

        colours = fig.variant_colours(table)
        made = [
            fig.accuracy_vs_gmacs(table, folder / "figures" / "accuracy_vs_gmacs", title=title),
            fig.ablation_bars(table, folder / "figures" / "ablation_top1", title=title),
            fig.accuracy_vs_frames(table, folder / "figures" / "accuracy_vs_frames", title=title),
            fig.training_curves(history, label_of, folder / "figures" / "training_curves", title=title,
                                colours=colours),
            fig.pair_accuracy_bars(pairs, folder / "figures" / "within_pair_accuracy",
                                   title=f"{study}: within-pair accuracy", order=list(table["label"]),
                                   colours=colours)
            if not pairs.empty else None,
            fig.gsf_internals(runs, table, folder / "figures" / "gsf_internals", title=title),
        ]
        figure_paths = [p for paths in made if paths for p in paths]
    return {"study": study, "folder": folder, "tables": written, "figures": figure_paths, "table": table,
            "statuses": runs["status"].value_counts().sort_index().to_dict(), "findings": findings}


REPORT_ARTIFACT_PATH = "report"


def log_report_artifacts(uri: str, study: str, folder: Path) -> list[str]:
    """Log ``folder`` (one study's report) as the ``report/`` artifacts of every sweep parent run of ``study``;
    returns their run ids. A store whose artifacts cannot be written (a read-only artifact root, a server
    without artifact access) gets a warning on stderr, not a failed report."""
    from mlflow import MlflowClient

    from analysis.runs import sweep_run_ids

    client = MlflowClient(tracking_uri=uri)
    logged = []
    for run_id in sweep_run_ids(uri, study):
        try:
            client.log_artifacts(run_id, str(folder), artifact_path=REPORT_ARTIFACT_PATH)
        except Exception as error:  # noqa: BLE001 - any store failure: the files on disk stand
            print(f"gsf report: warning: could not log {folder} to sweep run {run_id} of study {study!r}: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)
            continue
        logged.append(run_id)
    return logged


def _complexity_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.csv")) if directory.is_dir() else []


def write_index(out: Path, args: argparse.Namespace, studies: list[dict], complexity: list[Path]) -> Path:
    from analysis import tables

    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    lines = ["# GSF Bench report", "",
             f"- tracking URI: `{shown_uri(args.tracking_uri)}`",
             f"- command: `{command_line(args)}`",
             f"- date: {now}", ""]
    if not studies:
        lines += ["No trial runs found (tag `gsf.role=trial`).", ""]
    for entry in studies:
        statuses = ", ".join(f"{n} {s}" for s, n in entry["statuses"].items())
        lines += [f"## {entry['study']}", "", f"Runs: {statuses}.", ""]
        lines += [f"- [{p.relative_to(out).as_posix()}]({p.relative_to(out).as_posix()})" for p in entry["tables"]]
        lines += [f"- [{p.relative_to(out).as_posix()}]({p.relative_to(out).as_posix()})" for p in entry["figures"]]
        lines += ["", tables.to_markdown(tables.display_frame(entry["table"])).rstrip("\n"), ""]
        lines += [f"- {note}" for note in tables.table_notes(entry["table"])] + [""]
        if entry.get("findings"):
            lines += ["### Findings (computed from the runs)", "", findings_markdown(entry["findings"]).rstrip("\n"), ""]
    lines += ["## Complexity at paper resolution (`gsf sweep GRID --complexity-only`)", ""]
    if complexity:
        for path in complexity:
            shown = os.path.relpath(path, out)
            lines += [f"### {shown}", ""]
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            lines += [tables.to_markdown(frame).rstrip("\n"), ""]
    else:
        lines += [f"None found under `{args.complexity_dir}`.", ""]
    index = out / "README.md"
    index.write_text("\n".join(lines), encoding="utf-8")
    return index


def build_report(args: argparse.Namespace) -> Path:
    from analysis import paper as paper_numbers
    from analysis.runs import list_studies, load_runs
    from experiments.tracking import preflight

    if args.tracking_uri.startswith(("http://", "https://")):
        preflight(args.tracking_uri)  # a dead server: seconds and its URI, not minutes of MLflow's HTTP retries
    studies = args.study or list_studies(args.tracking_uri)
    runs = load_runs(args.tracking_uri, studies)
    paper = paper_numbers.load_accuracy(args.paper_dir or paper_numbers.PAPER_DIR)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for study in sorted(studies):
        study_runs = runs[runs["study"] == study].reset_index(drop=True)
        if study_runs.empty:
            continue
        entry = report_study(args.tracking_uri, study, study_runs, out, paper, not args.no_figures)
        if not args.no_log_artifacts:
            logged = log_report_artifacts(args.tracking_uri, study, entry["folder"])
            if logged:
                print(f"gsf report: {study}: the report is the {REPORT_ARTIFACT_PATH}/ artifacts of sweep run(s) "
                      f"{', '.join(logged)}")
        entries.append(entry)
    return write_index(out, args, entries, _complexity_files(Path(args.complexity_dir)))


def run(args: argparse.Namespace) -> int:
    index = build_report(args)
    print(f"gsf report: wrote {index}")
    return 0
