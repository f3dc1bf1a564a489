"""Study tables: one row per variant (the flat config minus the seed), statistics over seeds.

Accuracies are logged as fractions and shown in percent (columns say ``_pct``). A row is compared with
its baseline row by Welch's t-test over seeds (unequal variances); with fewer than two seeds on either
side there is no test and the table says ``n/a``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.paper import match_accuracy
from analysis.runs import normalise_value

SIGNIFICANCE = 0.05
NA = "n/a"

FIXED_COLUMNS = (
    "backbone", "dataset", "frames", "views", "gmacs_per_view", "params_m", "status", "n", "seeds",
    "top1_mean_pct", "top1_std_pct", "top5_mean_pct", "top5_std_pct", "best_top1_mean_pct", "best_epoch",
    "final_epoch", "baseline", "compared_with", "delta_top1_pct", "welch_p", "significant",
    "paper_top1_pct", "paper_diff_pct", "paper_source", "config_hash", "warnings",
)


def natural_key(value) -> tuple:
    """Numbers before text, numbers by value: ``2 < 10 < 'gsf' < 'none'``."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def variant_label(axes: Mapping[str, str]) -> str:
    """Short label of a variant from its axis values: ``temporal=gsf, channel_fraction=0.5``."""
    if not axes:
        return "(single config)"
    return ", ".join(f"{key.rsplit('.', 1)[-1]}={axes[key]}" for key in sorted(axes))


def _status_text(statuses: Counter, missing: list[int]) -> str:
    parts = []
    if statuses.get("FINISHED"):
        parts.append(f"{statuses['FINISHED']} finished")
    for status in sorted(s for s in statuses if s != "FINISHED"):
        parts.append(f"{statuses[status]} {status}")
    if missing:
        parts.append(f"{len(missing)} missing (seed {', '.join(str(s) for s in missing)})")
    return ", ".join(parts)


def _collapse(values: list) -> str:
    values = [int(v) for v in values if v is not None and not pd.isna(v)]
    if not values:
        return ""
    return str(values[0]) if len(set(values)) == 1 else "/".join(str(v) for v in values)


def _mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return math.nan, math.nan
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else math.nan


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided Welch's t-test p-value, NaN when either side has fewer than two values or it is undefined
    (both sides without variance)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    from scipy import stats

    result = stats.ttest_ind(np.asarray(a, float), np.asarray(b, float), equal_var=False)
    return float(result.pvalue)


def _group_rows(study_runs: pd.DataFrame, final_epochs: Mapping[str, int]) -> list[dict]:
    expected = sorted({int(s) for s in study_runs["seed"].dropna()})
    rows = []
    for config_key, runs in study_runs.groupby("config_key", sort=True):
        runs = runs.sort_values(["seed", "start_time", "run_id"], na_position="last")
        first = runs.iloc[0]
        warnings = []
        for seed, same_seed in runs.groupby("seed", sort=True):
            hashes = sorted({h for h in same_seed["config_hash"] if h})
            if len(hashes) > 1:
                warnings.append(f"seed {int(seed)}: different config hashes {' '.join(hashes)}")
        # a run an ASHA scheduler stopped early is FINISHED without final metrics: counted, never averaged
        early = (runs["stopped_early"].fillna(False).astype(bool) if "stopped_early" in runs
                 else pd.Series(False, index=runs.index))
        finished = runs[(runs["status"] == "FINISHED") & ~early]
        # a seed rerun after a failure counts once: its latest finished run
        chosen = finished.groupby("seed", sort=True, dropna=False).tail(1)
        duplicates = len(finished) - len(chosen)
        if duplicates:
            warnings.append(f"{duplicates} duplicate finished run(s) of a seed ignored (latest kept)")
        versions = sorted({v for v in chosen["code_version"] if v})
        if len(versions) > 1:
            warnings.append(f"mixed code versions {' '.join(versions)}")
        no_metric = chosen[chosen["top1"].isna()]
        if len(no_metric):
            warnings.append(f"{len(no_metric)} finished run(s) without final_val_top1")
        chosen = chosen[chosen["top1"].notna()]
        seeds_present = {int(s) for s in runs["seed"].dropna()}
        missing = [s for s in expected if s not in seeds_present]
        top1 = list(chosen["top1"] * 100.0)
        top5 = [v * 100.0 for v in chosen["top5"] if not pd.isna(v)]
        best = [v * 100.0 for v in chosen["best_top1"] if not pd.isna(v)]
        gmacs = runs["gmacs"].dropna()
        params = runs["params"].dropna()
        rows.append({
            "config_key": config_key,
            "axes": dict(first["axes"]),
            "config": dict(first["config"]),
            "baseline_spec": dict(first["baseline"]),
            "backbone": first["backbone"],
            "dataset": first["dataset"],
            "temporal": first["temporal"],
            "frames": first["frames"],
            "views": first["views"],
            "gmacs_per_view": float(gmacs.iloc[0]) if len(gmacs) else math.nan,
            "params_m": float(params.iloc[0]) / 1e6 if len(params) else math.nan,
            "status": _status_text(Counter(runs["status"].where(~early, "stopped early")), missing),
            "n": len(top1),
            "seeds": ",".join(str(int(s)) for s in chosen["seed"].dropna()),
            "top1_values": top1,
            "top1_mean_pct": _mean_std(top1)[0],
            "top1_std_pct": _mean_std(top1)[1],
            "top5_mean_pct": _mean_std(top5)[0],
            "top5_std_pct": _mean_std(top5)[1],
            "n_top5": len(top5),
            "best_top1_mean_pct": _mean_std(best)[0],
            "best_epoch": _collapse(list(chosen["best_epoch"])),
            "final_epoch": _collapse([final_epochs.get(r, None) for r in chosen["run_id"]]),
            "config_hash": " ".join(sorted({h for h in runs["config_hash"] if h})),
            "warnings": "; ".join(warnings),
            "run_ids": list(runs["run_id"]),
        })
    axis_keys = sorted({k for row in rows for k in row["axes"]})
    rows.sort(key=lambda r: ([natural_key(r["axes"].get(k)) for k in axis_keys], r["config_key"]))
    return rows


def _matches(row: dict, spec: Mapping[str, str]) -> bool:
    for key, value in spec.items():
        have = row["axes"].get(key, row["config"].get(key))
        if have is None or normalise_value(have) != value:
            return False
    return True


def _assign_baselines(rows: list[dict]) -> None:
    """Each row's baseline: among the rows matching the grid's ``baseline`` (else the TSN rows, else the
    first row), the one agreeing with it on every other axis, else the first such row."""
    spec = next((r["baseline_spec"] for r in rows if r["baseline_spec"]), {})
    candidates = [i for i, r in enumerate(rows) if spec and _matches(r, spec)]
    if not candidates:
        candidates = [i for i, r in enumerate(rows) if r["temporal"] == "none"]
    if not candidates and rows:
        candidates = [0]
    for i, row in enumerate(rows):
        if i in candidates:
            row["baseline_index"] = i
            continue
        ignored = set(spec) if spec else {"model.temporal"}
        others = {k: v for k, v in row["axes"].items() if k not in ignored}
        same = [c for c in candidates if all(rows[c]["axes"].get(k) == v for k, v in others.items())]
        row["baseline_index"] = (same or candidates)[0]


def study_table(study_runs: pd.DataFrame, paper: pd.DataFrame | None = None,
                final_epochs: Mapping[str, int] | None = None) -> pd.DataFrame:
    """The table of one study from its trial runs (:func:`analysis.runs.load_runs`).

    Returns typed values (NaN where unknown) with the axis columns first (one per ``gsf.axis.*`` key,
    sorted by key) and then :data:`FIXED_COLUMNS`; ``attrs["axis_columns"]`` lists the axis columns and
    the hidden columns ``n_top5``, ``top1_values``, ``run_ids`` and ``label`` keep what formatting and
    figures need.
    """
    rows = _group_rows(study_runs, final_epochs or {})
    _assign_baselines(rows)
    axis_keys = sorted({k for row in rows for k in row["axes"]})
    records = []
    for row in rows:
        base = rows[row["baseline_index"]]
        is_base = base is row
        record = {key: row["axes"].get(key, "") for key in axis_keys}
        record.update({k: row[k] for k in FIXED_COLUMNS if k in row})
        record["baseline"] = "yes" if is_base else ""
        record["compared_with"] = "" if is_base else variant_label(base["axes"])
        if is_base:
            record["delta_top1_pct"] = math.nan
            record["welch_p"] = math.nan
            record["significant"] = ""
        else:
            record["delta_top1_pct"] = row["top1_mean_pct"] - base["top1_mean_pct"]
            p = welch_p(row["top1_values"], base["top1_values"])
            record["welch_p"] = p
            record["significant"] = NA if math.isnan(p) else ("yes" if p < SIGNIFICANCE else "no")
        hit = None
        if paper is not None:
            hit = match_accuracy(paper, dataset=row["dataset"], backbone=row["backbone"], frames=row["frames"],
                                 temporal=row["temporal"], views=row["views"])
        record["paper_top1_pct"] = float(hit["value_pct"]) if hit is not None else math.nan
        record["paper_diff_pct"] = row["top1_mean_pct"] - record["paper_top1_pct"]
        record["paper_source"] = hit["source"] if hit is not None else ""
        record["n_top5"] = row["n_top5"]
        record["top1_values"] = row["top1_values"]
        record["run_ids"] = row["run_ids"]
        record["label"] = variant_label(row["axes"])
        records.append(record)
    columns = list(axis_keys) + list(FIXED_COLUMNS) + ["n_top5", "top1_values", "run_ids", "label"]
    table = pd.DataFrame(records, columns=columns)
    table.attrs["axis_columns"] = list(axis_keys)
    return table


# --- formatting ------------------------------------------------------------------------------------------

def _fmt(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def _fmt_std(value, n: int) -> str:
    return NA if n < 2 else _fmt(value, 2)


def _fmt_p(value, row) -> str:
    if row["baseline"] == "yes":
        return ""
    return NA if value is None or math.isnan(value) else f"{value:.4g}"


def csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """All visible columns as fixed-format strings (the CSV)."""
    out = pd.DataFrame(index=table.index)
    for key in table.attrs.get("axis_columns", []):
        out[key] = table[key].astype(str)
    out["backbone"] = table["backbone"].astype(str)
    out["dataset"] = table["dataset"].astype(str)
    out["frames"] = [("" if f is None or pd.isna(f) else str(int(f))) for f in table["frames"]]
    out["views"] = table["views"].astype(str)
    out["gmacs_per_view"] = [_fmt(v, 4) for v in table["gmacs_per_view"]]
    out["params_m"] = [_fmt(v, 4) for v in table["params_m"]]
    out["status"] = table["status"]
    out["n"] = table["n"].astype(int).astype(str)
    out["seeds"] = table["seeds"]
    out["top1_mean_pct"] = [_fmt(v, 2) for v in table["top1_mean_pct"]]
    out["top1_std_pct"] = [_fmt_std(v, n) for v, n in zip(table["top1_std_pct"], table["n"])]
    out["top5_mean_pct"] = [_fmt(v, 2) for v in table["top5_mean_pct"]]
    out["top5_std_pct"] = [_fmt_std(v, n) for v, n in zip(table["top5_std_pct"], table["n_top5"])]
    out["best_top1_mean_pct"] = [_fmt(v, 2) for v in table["best_top1_mean_pct"]]
    out["best_epoch"] = table["best_epoch"]
    out["final_epoch"] = table["final_epoch"]
    out["baseline"] = table["baseline"]
    out["compared_with"] = table["compared_with"]
    out["delta_top1_pct"] = [_fmt(v, 2) for v in table["delta_top1_pct"]]
    out["welch_p"] = [_fmt_p(v, row) for v, (_, row) in zip(table["welch_p"], table.iterrows())]
    out["significant"] = table["significant"]
    out["paper_top1_pct"] = [_fmt(v, 2) for v in table["paper_top1_pct"]]
    out["paper_diff_pct"] = [_fmt(v, 2) for v in table["paper_diff_pct"]]
    out["paper_source"] = table["paper_source"]
    out["config_hash"] = table["config_hash"]
    out["warnings"] = table["warnings"]
    return out.reset_index(drop=True)


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The human-readable columns of Markdown and LaTeX: ``mean ± std (n=k)``, significance marked."""
    csv = csv_frame(table)
    out = pd.DataFrame(index=csv.index)
    for key in table.attrs.get("axis_columns", []):
        out[key] = csv[key]
    out["backbone"] = csv["backbone"]
    out["frames"] = csv["frames"]
    out["views"] = csv["views"]
    out["GMACs/view"] = [_fmt(v, 2) for v in table["gmacs_per_view"]]
    out["params (M)"] = [_fmt(v, 2) for v in table["params_m"]]
    out["status"] = csv["status"]

    def acc(mean, std, n):
        if mean == "":
            return ""
        return f"{mean} ± {std} (n={n})"

    out["top-1 (%)"] = [acc(m, s, n) for m, s, n in zip(csv["top1_mean_pct"], csv["top1_std_pct"], csv["n"])]
    out["top-5 (%)"] = [acc(m, s, n) for m, s, n in zip(csv["top5_mean_pct"], csv["top5_std_pct"], csv["n"])]
    out["best epoch"] = csv["best_epoch"]
    out["final epoch"] = csv["final_epoch"]
    deltas = []
    for delta, sig, base in zip(csv["delta_top1_pct"], csv["significant"], csv["baseline"]):
        if base == "yes":
            deltas.append("baseline")
        elif delta == "":
            deltas.append("")
        else:
            deltas.append(("+" if not delta.startswith("-") else "") + delta + (" *" if sig == "yes" else ""))
    out["Δ top-1 vs baseline"] = deltas
    out["p (Welch)"] = csv["welch_p"]
    out["paper top-1 (%)"] = csv["paper_top1_pct"]
    out["Δ paper"] = csv["paper_diff_pct"]
    out["paper source"] = csv["paper_source"]
    if any(csv["warnings"]):
        out["warnings"] = csv["warnings"]
    return out.reset_index(drop=True)


def to_markdown(frame: pd.DataFrame) -> str:
    def cell(text) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text) -> str:
    escaped = re.sub(r"[\\&%$#_{}~^]", lambda m: _LATEX_SPECIAL[m.group(0)], str(text))
    return escaped.replace("±", r"$\pm$").replace("Δ", r"$\Delta$")


def to_latex(frame: pd.DataFrame, *, caption: str = "") -> str:
    """A booktabs ``tabular`` (no float environment, so it drops into any document)."""
    lines = []
    if caption:
        lines.append(f"% {latex_escape(caption)}")
    lines.append(r"\begin{tabular}{" + "l" * len(frame.columns) + "}")
    lines.append(r"\toprule")
    lines.append(" & ".join(latex_escape(c) for c in frame.columns) + r" \\")
    lines.append(r"\midrule")
    for _, row in frame.iterrows():
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, directory: Path, stem: str, *, title: str = "") -> list[Path]:
    """Write ``<stem>.csv`` (fixed-format values), ``<stem>.md`` and ``<stem>.tex``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, tex_path = (directory / f"{stem}.{ext}" for ext in ("csv", "md", "tex"))
    csv_frame(table).to_csv(csv_path, index=False, lineterminator="\n")
    display = display_frame(table)
    header = f"# {title}\n\n" if title else ""
    md_path.write_text(header + to_markdown(display), encoding="utf-8")
    tex_path.write_text(to_latex(display, caption=title), encoding="utf-8")
    return [csv_path, md_path, tex_path]
