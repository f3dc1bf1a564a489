"""Study tables: one row per variant (the flat config minus the seed), statistics over seeds.

Accuracies are logged as fractions and shown in percent (columns say ``_pct``). Each row is named by its
short variant name (:func:`gsf.variant_names.variant_name`). Where the runs logged test-protocol
metrics (``test_1x1_top1``, ``test_2x3_top1``: the best checkpoint at CLIPSxCROPS views), the table has one
column per protocol with a 95 % t-interval over seeds, beside the paper's number for that protocol. A row is
compared with its baseline row by Welch's t-test over seeds (unequal variances) on the primary metric
(the first protocol's top-1, else the last validation top-1); with fewer than two seeds on either side there
is no test and the table says ``n/a``. The last two validation evaluations (mean over seeds) show whether
training had stopped improving.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.paper import match_accuracy
from analysis.runs import DATA_AXIS, normalise_value
from gsf import mlflow_schema as schema
from gsf.markdown import markdown_table

SIGNIFICANCE = 0.05
CONFIDENCE = 0.95
NA = "n/a"

FIXED_COLUMNS = (
    "variant", "backbone", "dataset", "frames", "views", "gmacs_per_view", "params_m", "status", "n", "seeds",
    "trained",
    "top1_mean_pct", "top1_std_pct", "top5_mean_pct", "top5_std_pct", "best_top1_mean_pct", "best_epoch",
    "final_epoch", "primary_metric", "primary_mean_pct", "top1_ci_low_pct", "top1_ci_high_pct",
    "val_prev_epoch", "val_prev_top1_pct", "val_last_epoch", "val_last_top1_pct",
    "baseline", "compared_with", "delta_top1_pct", "welch_p", "significant",
    "paper_top1_pct", "paper_diff_pct", "paper_source", "config_hash", "warnings",
)


def natural_key(value) -> tuple:
    """Numbers before text, numbers by value: ``2 < 10 < 'gsf' < 'none'``."""
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def t_interval(values: list[float], level: float = CONFIDENCE) -> tuple[float, float]:
    """Two-sided ``level`` t-interval of the mean of ``values`` (seeds); NaNs with fewer than two values."""
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, array.size - 1) * array.std(ddof=1) / math.sqrt(array.size))
    return float(array.mean()) - half, float(array.mean()) + half


def protocols_of(runs: pd.DataFrame) -> list[str]:
    """Test protocols (``"1x1"``, ``"2x3"``) with a top-1 metric logged by any run, fewest views first."""
    found = set()
    for column in runs.columns:
        parsed = schema.parse_protocol_metric(str(column))
        if parsed and parsed[1] == "top1" and runs[column].notna().any():
            found.add(parsed[0])
    return sorted(found, key=lambda p: tuple(int(x) for x in p.split("x")))


def decimals_to_tell_apart(values, *, minimum: int = 2, maximum: int = 6) -> int:
    """The fewest decimals (at least ``minimum``) at which the distinct ``values`` stay distinct, so
    0.0233 and 0.0253 GMACs do not both print as 0.02."""
    distinct = sorted({float(v) for v in values if v is not None and not pd.isna(v)})
    for digits in range(minimum, maximum + 1):
        if len({round(v, digits) for v in distinct}) == len(distinct):
            return digits
    return maximum


def variant_names(rows: list[Mapping]) -> list[str]:
    """The short name of each row (:func:`gsf.variant_names.variant_name`, or the runs' own
    ``gsf.variant`` tag); rows that share a name get the axis values that tell them apart appended,
    ``GSF (frames=16)``."""
    return _names_told_apart([(row.get("variant_tag") or "", row["config"], row["axes"]) for row in rows])


def _names_told_apart(rows: list[tuple[str, Mapping, Mapping]]) -> list[str]:
    """:func:`variant_names` of (variant tag, flat config, axes) triples."""
    from gsf.variant_names import variant_name

    names = [tag or variant_name({**config, **axes}) for tag, config, axes in rows]
    out = list(names)
    for name in set(names):
        same = [i for i, n in enumerate(names) if n == name]
        if len(same) < 2:
            continue
        keys = sorted({k for i in same for k in rows[i][2]})
        differing = [k for k in keys if len({str(rows[i][2].get(k, "")) for i in same}) > 1]
        for i in same:
            extra = ", ".join(f"{k.rsplit('.', 1)[-1]}={rows[i][2].get(k, '')}" for k in differing)
            out[i] = f"{name} ({extra})" if extra else name
    return out


# --- one row per variant ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SeedOutcome:
    """Which runs of a row count and how they ended: the status text (finished, failed, stopped early,
    missing seeds), the seeds averaged, and the did-not-train marks of :mod:`analysis.findings`."""

    status: str
    n: int  # runs averaged: the latest finished run of each seed with a final validation top-1
    seeds: str
    trained: str  # "3 of 3", "2 of 3 (not seed 3)", or empty where no run could be told
    trained_told: int
    did_not_train_seeds: list[int]
    did_not_train_flags: list[bool]  # one per run averaged, False where it could not be told


@dataclass(frozen=True)
class ProtocolResult:
    """Top-1 (percent) of the best checkpoint at one test protocol: per seed, mean, 95 % t-interval."""

    values: list[float]
    mean: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class Accuracy:
    """Accuracies over the runs averaged, in percent: the last validation (top-1, top-5), the best
    validation top-1 and its epochs, and each test protocol's top-1."""

    top1_values: list[float]
    top1_mean_pct: float
    top1_std_pct: float
    top5_mean_pct: float
    top5_std_pct: float
    n_top5: int
    best_top1_mean_pct: float
    best_epoch: str
    final_epoch: str
    protocols: dict[str, ProtocolResult]


@dataclass(frozen=True)
class PrimaryMetric:
    """The metric a row is compared on: the first protocol's top-1, else the last validation top-1."""

    name: str
    values: list[float]
    mean_pct: float
    ci_low_pct: float
    ci_high_pct: float


@dataclass(frozen=True)
class LastEvaluations:
    """Epochs and mean over runs (percent) of the last two ``val_top1`` evaluations."""

    prev_epoch: str
    prev_top1_pct: float
    last_epoch: str
    last_top1_pct: float


@dataclass(frozen=True)
class GroupedRow:
    """What the runs of one configuration (every seed) give a table row, before it is named and compared."""

    config_key: str
    variant_tag: str  # the runs' own gsf.variant tag where they agree on one
    axes: dict
    config: dict
    baseline_spec: dict  # the grid's baseline, from the sweep run
    backbone: str
    dataset: str
    temporal: str
    frames: object
    views: str
    gmacs_per_view: float
    params_m: float
    outcome: SeedOutcome
    accuracy: Accuracy
    primary: PrimaryMetric
    last_evaluations: LastEvaluations
    config_hash: str
    warnings: str
    run_ids: list[str]
    variant: str = ""  # the short name, given once every row of the study is known


@dataclass(frozen=True)
class Comparison:
    """A row against its baseline row on the primary metric (Welch's t-test over seeds)."""

    baseline: str  # "yes" on the baseline row itself
    compared_with: str
    delta_top1_pct: float
    welch_p: float
    significant: str


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

    a, b = np.asarray(a, float), np.asarray(b, float)
    sd_a, sd_b = float(np.std(a, ddof=1)), float(np.std(b, ddof=1))
    if sd_a == 0.0 and sd_b == 0.0:
        return math.nan
    # From the sides' statistics, not ttest_ind: its check for nearly identical values (every seed of a variant
    # at the same accuracy is common on small validation sets) warns of precision loss where there is none to fear.
    result = stats.ttest_ind_from_stats(float(a.mean()), sd_a, len(a), float(b.mean()), sd_b, len(b), equal_var=False)
    return float(result.pvalue)


def _last_two_evaluations(history: pd.DataFrame | None, run_ids: list[str]) -> LastEvaluations:
    """Epochs and mean over runs (percent) of the last two ``val_top1`` evaluations of ``run_ids``."""
    if history is None or history.empty:
        return LastEvaluations("", math.nan, "", math.nan)
    part = history[(history["key"] == "val_top1") & history["run_id"].isin(run_ids)]
    previous, last = [], []
    for _, curve in part.groupby("run_id"):
        curve = curve.sort_values("epoch")
        if len(curve) >= 2:
            previous.append((int(curve["epoch"].iloc[-2]), float(curve["value"].iloc[-2]) * 100.0))
        if len(curve):
            last.append((int(curve["epoch"].iloc[-1]), float(curve["value"].iloc[-1]) * 100.0))

    def summary(points):
        if not points:
            return "", math.nan
        return _collapse([e for e, _ in points]), float(np.mean([v for _, v in points]))

    return LastEvaluations(*summary(previous), *summary(last))


def _training_outcome(chosen: pd.DataFrame) -> tuple[int, list[int]]:
    """How many of the chosen runs could be told trained or not (:mod:`analysis.findings`), and the seeds of
    those that did not train."""
    if "did_not_train" not in chosen:
        return 0, []
    told = [(seed, bool(v)) for seed, v in zip(chosen["seed"], chosen["did_not_train"]) if v is not None and not pd.isna(v)]
    return len(told), [int(seed) for seed, dead in told if dead]


def _trained_text(told: int, dead: list[int]) -> str:
    """``3 of 3``, ``2 of 3 (not seed 3)``, or empty where no run could be told."""
    if not told:
        return ""
    text = f"{told - len(dead)} of {told}"
    return text + f" (not seed {', '.join(str(s) for s in dead)})" if dead else text


def _did_not_train_flags(chosen: pd.DataFrame) -> list[bool]:
    """One mark per chosen run: True where it did not train, False where it did or could not be told."""
    if "did_not_train" not in chosen:
        return [False] * len(chosen)
    return [bool(v) if v is not None and not pd.isna(v) else False for v in chosen["did_not_train"]]


def _stopped_early(runs: pd.DataFrame) -> pd.Series:
    """Runs an ASHA scheduler stopped: FINISHED without final metrics, so counted but never averaged."""
    if "stopped_early" not in runs:
        return pd.Series(False, index=runs.index)
    return runs["stopped_early"].fillna(False).astype(bool)


def _warnings(runs: pd.DataFrame, finished: pd.DataFrame, latest: pd.DataFrame) -> list[str]:
    """What the table's warnings column says of one configuration's runs: a seed logged under several config
    hashes, reruns of a finished seed, mixed code versions, finished runs without a final top-1."""
    warnings = []
    for seed, same_seed in runs.groupby("seed", sort=True):
        hashes = sorted({h for h in same_seed["config_hash"] if h})
        if len(hashes) > 1:
            warnings.append(f"seed {int(seed)}: different config hashes {' '.join(hashes)}")
    duplicates = len(finished) - len(latest)
    if duplicates:
        warnings.append(f"{duplicates} duplicate finished run(s) of a seed ignored (latest kept)")
    versions = sorted({v for v in latest["code_version"] if v})
    if len(versions) > 1:
        warnings.append(f"mixed code versions {' '.join(versions)}")
    no_metric = latest[latest["top1"].isna()]
    if len(no_metric):
        warnings.append(f"{len(no_metric)} finished run(s) without final_val_top1")
    return warnings


def _seed_outcome(runs: pd.DataFrame, chosen: pd.DataFrame, *, early: pd.Series, expected: list[int]) -> SeedOutcome:
    """Statuses (a stopped run as ``stopped early``), the seeds never logged, and who trained among ``chosen``."""
    seeds_present = {int(s) for s in runs["seed"].dropna()}
    missing = [s for s in expected if s not in seeds_present]
    told, dead = _training_outcome(chosen)
    return SeedOutcome(
        status=_status_text(Counter(runs["status"].where(~early, "stopped early")), missing),
        n=len(chosen),
        seeds=",".join(str(int(s)) for s in chosen["seed"].dropna()),
        trained=_trained_text(told, dead),
        trained_told=told,
        did_not_train_seeds=dead,
        did_not_train_flags=_did_not_train_flags(chosen),
    )


def _protocol_result(chosen: pd.DataFrame, protocol: str) -> ProtocolResult:
    values = [v * 100.0 for v in chosen[schema.protocol_metric(protocol, "top1")] if not pd.isna(v)]
    return ProtocolResult(values=values, mean=_mean_std(values)[0], ci=t_interval(values))


def _accuracy(chosen: pd.DataFrame, *, protocols: list[str], final_epochs: Mapping[str, int]) -> Accuracy:
    """Mean and standard deviation over the chosen runs, in percent, and each protocol's interval."""
    top1 = list(chosen["top1"] * 100.0)
    top5 = [v * 100.0 for v in chosen["top5"] if not pd.isna(v)]
    best = [v * 100.0 for v in chosen["best_top1"] if not pd.isna(v)]
    return Accuracy(
        top1_values=top1,
        top1_mean_pct=_mean_std(top1)[0],
        top1_std_pct=_mean_std(top1)[1],
        top5_mean_pct=_mean_std(top5)[0],
        top5_std_pct=_mean_std(top5)[1],
        n_top5=len(top5),
        best_top1_mean_pct=_mean_std(best)[0],
        best_epoch=_collapse(list(chosen["best_epoch"])),
        final_epoch=_collapse([final_epochs.get(r, None) for r in chosen["run_id"]]),
        protocols={protocol: _protocol_result(chosen, protocol) for protocol in protocols},
    )


def _primary_metric(accuracy: Accuracy, protocols: list[str]) -> PrimaryMetric:
    """The first protocol's top-1 (fewest views), else the last validation top-1; its mean and interval."""
    if protocols:
        name, values = f"top-1 {protocols[0]} (best checkpoint)", accuracy.protocols[protocols[0]].values
    else:
        name, values = "val top-1 (last epoch)", accuracy.top1_values
    low, high = t_interval(values)
    return PrimaryMetric(name=name, values=values, mean_pct=_mean_std(values)[0], ci_low_pct=low, ci_high_pct=high)


def _grouped_row(config_key, runs: pd.DataFrame, *, expected: list[int], protocols: list[str],
                 final_epochs: Mapping[str, int], history: pd.DataFrame | None) -> GroupedRow:
    """The row of one configuration's runs (every seed, reruns and failures included)."""
    runs = runs.sort_values(["seed", "start_time", "run_id"], na_position="last")
    first = runs.iloc[0]
    early = _stopped_early(runs)
    finished = runs[(runs["status"] == "FINISHED") & ~early]
    # a seed rerun after a failure counts once: its latest finished run
    latest = finished.groupby("seed", sort=True, dropna=False).tail(1)
    chosen = latest[latest["top1"].notna()]
    accuracy = _accuracy(chosen, protocols=protocols, final_epochs=final_epochs)
    gmacs = runs["gmacs"].dropna()
    params = runs["params"].dropna()
    variant_tags = {v for v in runs.get("variant", pd.Series(dtype=object)) if isinstance(v, str) and v}
    return GroupedRow(
        config_key=config_key,
        variant_tag=variant_tags.pop() if len(variant_tags) == 1 else "",
        axes=dict(first["axes"]),
        config=dict(first["config"]),
        baseline_spec=dict(first["baseline"]),
        backbone=first["backbone"],
        dataset=first["dataset"],
        temporal=first["temporal"],
        frames=first["frames"],
        views=first["views"],
        gmacs_per_view=float(gmacs.iloc[0]) if len(gmacs) else math.nan,
        params_m=float(params.iloc[0]) / 1e6 if len(params) else math.nan,
        outcome=_seed_outcome(runs, chosen, early=early, expected=expected),
        accuracy=accuracy,
        primary=_primary_metric(accuracy, protocols),
        last_evaluations=_last_two_evaluations(history, list(chosen["run_id"])),
        config_hash=" ".join(sorted({h for h in runs["config_hash"] if h})),
        warnings="; ".join(_warnings(runs, finished, latest)),
        run_ids=list(runs["run_id"]),
    )


def _axis_keys(rows: list[GroupedRow]) -> list[str]:
    return sorted({k for row in rows for k in row.axes})


def _group_rows(study_runs: pd.DataFrame, final_epochs: Mapping[str, int],
                history: pd.DataFrame | None = None) -> list[GroupedRow]:
    """One row per configuration (``config_key``), ordered by axis values."""
    expected = sorted({int(s) for s in study_runs["seed"].dropna()})
    protocols = protocols_of(study_runs)
    rows = [_grouped_row(config_key, runs, expected=expected, protocols=protocols, final_epochs=final_epochs,
                         history=history)
            for config_key, runs in study_runs.groupby("config_key", sort=True)]
    axis_keys = _axis_keys(rows)
    rows.sort(key=lambda r: ([natural_key(r.axes.get(k)) for k in axis_keys], r.config_key))
    return rows


def _paper_order(row: GroupedRow) -> tuple:
    """Rows as the paper's tables list them: TSN, TSM, GSM, GSF (then TAM, TIN: :data:`TEMPORAL_KINDS`'s order),
    each kind's variants after it, then the rest."""
    from gsf.vocabulary import TEMPORAL_KINDS

    kinds = TEMPORAL_KINDS
    kind = str(row.temporal)
    rank = kinds.index(kind) if kind in kinds else len(kinds)
    return (rank, " " in row.variant, natural_key(row.variant), row.config_key)


def _matches(row: GroupedRow, spec: Mapping[str, str]) -> bool:
    for key, value in spec.items():
        have = row.axes.get(key, row.config.get(key))
        if have is None or normalise_value(have) != value:
            return False
    return True


def _baseline_indices(rows: list[GroupedRow]) -> list[int]:
    """Each row's baseline (an index into ``rows``): among the rows matching the grid's ``baseline`` (else the
    TSN rows, else the first row), the one agreeing with it on every other axis, else the first such row."""
    spec = next((r.baseline_spec for r in rows if r.baseline_spec), {})
    candidates = [i for i, r in enumerate(rows) if spec and _matches(r, spec)]
    if not candidates:
        candidates = [i for i, r in enumerate(rows) if r.temporal == "none"]
    if not candidates and rows:
        candidates = [0]
    ignored = set(spec) if spec else {"model.temporal"}
    indices = []
    for i, row in enumerate(rows):
        if i in candidates:
            indices.append(i)
            continue
        others = {k: v for k, v in row.axes.items() if k not in ignored}
        same = [c for c in candidates if all(rows[c].axes.get(k) == v for k, v in others.items())]
        indices.append((same or candidates)[0])
    return indices


def _compare(row: GroupedRow, base: GroupedRow) -> Comparison:
    """``row`` against ``base`` on the primary metric: Δ of the means and Welch's p (``n/a`` without a test)."""
    if base is row:
        return Comparison(baseline="yes", compared_with="", delta_top1_pct=math.nan, welch_p=math.nan,
                          significant="")
    p = welch_p(row.primary.values, base.primary.values)
    return Comparison(baseline="", compared_with=base.variant,
                      delta_top1_pct=row.primary.mean_pct - base.primary.mean_pct, welch_p=p,
                      significant=NA if math.isnan(p) else ("yes" if p < SIGNIFICANCE else "no"))


def _paper_columns(row: GroupedRow, paper: pd.DataFrame | None, protocols: list[str]) -> dict:
    """The published top-1 for each protocol, and for the primary metric with its difference and source
    (:func:`analysis.paper.match_accuracy`; NaN and empty where nothing matches)."""

    def published(views: str) -> pd.Series | None:
        if paper is None:
            return None
        return match_accuracy(paper, dataset=row.dataset, backbone=row.backbone, frames=row.frames,
                              temporal=row.temporal, views=views)

    columns = {}
    for protocol in protocols:
        hit = published(protocol)
        columns[f"paper_top1_{protocol}_pct"] = float(hit["value_pct"]) if hit is not None else math.nan
    hit = published(protocols[0] if protocols else row.views)
    columns["paper_top1_pct"] = float(hit["value_pct"]) if hit is not None else math.nan
    columns["paper_diff_pct"] = row.primary.mean_pct - columns["paper_top1_pct"]
    columns["paper_source"] = hit["source"] if hit is not None else ""
    return columns


def _record(row: GroupedRow, comparison: Comparison, paper_columns: Mapping, *, axis_keys: list[str],
            protocols: list[str]) -> dict:
    """The table's values of one row: axis columns, :data:`FIXED_COLUMNS`, protocol columns, hidden columns."""
    outcome, accuracy, primary, last = row.outcome, row.accuracy, row.primary, row.last_evaluations
    record = {key: row.axes.get(key, "") for key in axis_keys}
    record.update({
        "variant": row.variant, "backbone": row.backbone, "dataset": row.dataset, "frames": row.frames,
        "views": row.views, "gmacs_per_view": row.gmacs_per_view, "params_m": row.params_m,
        "status": outcome.status, "n": outcome.n, "seeds": outcome.seeds, "trained": outcome.trained,
        "top1_mean_pct": accuracy.top1_mean_pct, "top1_std_pct": accuracy.top1_std_pct,
        "top5_mean_pct": accuracy.top5_mean_pct, "top5_std_pct": accuracy.top5_std_pct,
        "best_top1_mean_pct": accuracy.best_top1_mean_pct, "best_epoch": accuracy.best_epoch,
        "final_epoch": accuracy.final_epoch,
        "primary_metric": primary.name, "primary_mean_pct": primary.mean_pct,
        "top1_ci_low_pct": primary.ci_low_pct, "top1_ci_high_pct": primary.ci_high_pct,
        "val_prev_epoch": last.prev_epoch, "val_prev_top1_pct": last.prev_top1_pct,
        "val_last_epoch": last.last_epoch, "val_last_top1_pct": last.last_top1_pct,
        "baseline": comparison.baseline, "compared_with": comparison.compared_with,
        "delta_top1_pct": comparison.delta_top1_pct, "welch_p": comparison.welch_p,
        "significant": comparison.significant,
        "config_hash": row.config_hash, "warnings": row.warnings,
    })
    for protocol in protocols:
        tested = accuracy.protocols[protocol]
        record[f"top1_{protocol}_mean_pct"] = tested.mean
        record[f"top1_{protocol}_ci_low_pct"], record[f"top1_{protocol}_ci_high_pct"] = tested.ci
    record.update(paper_columns)
    # aligned with top1_values where the primary metric is the validation top-1 of every chosen run
    flags = (outcome.did_not_train_flags if len(outcome.did_not_train_flags) == len(primary.values)
             else [False] * len(primary.values))
    record.update({
        "n_top5": accuracy.n_top5, "temporal": row.temporal, "trained_told": outcome.trained_told,
        "did_not_train_seeds": outcome.did_not_train_seeds, "did_not_train_flags": flags,
        "top1_values": primary.values, "run_ids": row.run_ids, "label": row.variant,
    })
    return record


def study_table(study_runs: pd.DataFrame, paper: pd.DataFrame | None = None,
                final_epochs: Mapping[str, int] | None = None, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table of one study from its trial runs (:func:`analysis.runs.load_runs`) and, for the last two
    evaluations, their per-epoch ``history`` (:func:`analysis.runs.metric_history`).

    Returns typed values (NaN where unknown) with the axis columns first (one per ``gsf.axis.*`` key,
    sorted by key), then :data:`FIXED_COLUMNS`, then per test protocol P ``top1_P_mean_pct``,
    ``top1_P_ci_low_pct``, ``top1_P_ci_high_pct``, ``paper_top1_P_pct``. ``attrs`` holds ``axis_columns``
    and ``protocols``; the hidden columns ``n_top5``, ``top1_values`` (the primary metric per seed),
    ``run_ids`` and ``label`` (the variant name) keep what formatting and figures need.
    """
    rows = _group_rows(study_runs, final_epochs or {}, history)
    names = _names_told_apart([(row.variant_tag, row.config, row.axes) for row in rows])
    rows = sorted((replace(row, variant=name) for row, name in zip(rows, names)), key=_paper_order)
    protocols = protocols_of(study_runs)
    axis_keys = _axis_keys(rows)
    records = [_record(row, _compare(row, rows[base]), _paper_columns(row, paper, protocols), axis_keys=axis_keys,
                       protocols=protocols)
               for row, base in zip(rows, _baseline_indices(rows))]
    protocol_columns = [f"{kind}_{p}_{part}" for p in protocols
                        for kind, part in (("top1", "mean_pct"), ("top1", "ci_low_pct"), ("top1", "ci_high_pct"),
                                           ("paper_top1", "pct"))]
    columns = list(axis_keys) + list(FIXED_COLUMNS) + protocol_columns + [
        "n_top5", "temporal", "trained_told", "did_not_train_seeds", "did_not_train_flags", "top1_values", "run_ids", "label"]
    table = pd.DataFrame(records, columns=columns)
    table.attrs["axis_columns"] = list(axis_keys)
    table.attrs["protocols"] = protocols
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
    """All visible columns as fixed-format strings (the CSV): every axis column, whether it varies or not."""
    out = pd.DataFrame(index=table.index)
    out["variant"] = table["variant"].astype(str)
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
    out["trained"] = table["trained"]
    out["top1_mean_pct"] = [_fmt(v, 2) for v in table["top1_mean_pct"]]
    out["top1_std_pct"] = [_fmt_std(v, n) for v, n in zip(table["top1_std_pct"], table["n"])]
    out["top5_mean_pct"] = [_fmt(v, 2) for v in table["top5_mean_pct"]]
    out["top5_std_pct"] = [_fmt_std(v, n) for v, n in zip(table["top5_std_pct"], table["n_top5"])]
    out["best_top1_mean_pct"] = [_fmt(v, 2) for v in table["best_top1_mean_pct"]]
    out["best_epoch"] = table["best_epoch"]
    out["final_epoch"] = table["final_epoch"]
    out["primary_metric"] = table["primary_metric"]
    for column in ("primary_mean_pct", "top1_ci_low_pct", "top1_ci_high_pct"):
        out[column] = [_fmt(v, 2) for v in table[column]]
    for protocol in table.attrs.get("protocols", []):
        for part in ("mean_pct", "ci_low_pct", "ci_high_pct"):
            out[f"top1_{protocol}_{part}"] = [_fmt(v, 2) for v in table[f"top1_{protocol}_{part}"]]
        out[f"paper_top1_{protocol}_pct"] = [_fmt(v, 2) for v in table[f"paper_top1_{protocol}_pct"]]
    out["val_prev_epoch"] = table["val_prev_epoch"]
    out["val_prev_top1_pct"] = [_fmt(v, 2) for v in table["val_prev_top1_pct"]]
    out["val_last_epoch"] = table["val_last_epoch"]
    out["val_last_top1_pct"] = [_fmt(v, 2) for v in table["val_last_top1_pct"]]
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


def _with_interval(mean, low, high) -> str:
    """``61.63 [58.40, 64.86]``: the mean and its 95 % t-interval over seeds (``n/a`` with one seed)."""
    if mean is None or pd.isna(mean):
        return ""
    interval = NA if pd.isna(low) else f"{low:.2f}, {high:.2f}"
    return f"{mean:.2f} [{interval}]"


def varying_axis_columns(table: pd.DataFrame) -> list[str]:
    """The axis columns whose value is not the same in every row."""
    return [key for key in table.attrs.get("axis_columns", []) if table[key].astype(str).nunique() > 1]


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The human-readable columns of Markdown and LaTeX: the variant, the knob columns that vary, one
    top-1 column per test protocol (mean and 95 % t-interval over seeds) beside the paper's number for that
    protocol, the last two validation evaluations, Δ and Welch's p against the baseline."""
    csv = csv_frame(table)
    out = pd.DataFrame(index=csv.index)
    out["variant"] = csv["variant"]
    for key in varying_axis_columns(table):
        out[key] = csv[key]
    out["backbone"] = csv["backbone"]
    out["frames"] = csv["frames"]
    gmacs_digits = decimals_to_tell_apart(table["gmacs_per_view"], minimum=2)
    out["GMACs/view"] = [_fmt(v, gmacs_digits) for v in table["gmacs_per_view"]]
    out["params (M)"] = [_fmt(v, decimals_to_tell_apart(table["params_m"], minimum=2)) for v in table["params_m"]]
    out["status"] = csv["status"]
    out["n"] = csv["n"]
    if any(csv["trained"]):
        out["trained (seeds)"] = csv["trained"]
    protocols = table.attrs.get("protocols", [])
    paper_columns = []
    for protocol in protocols:
        clips, crops = protocol.split("x")
        out[f"top-1 {protocol} (%) [95 % CI]"] = [
            _with_interval(*values) for values in zip(table[f"top1_{protocol}_mean_pct"],
                                                      table[f"top1_{protocol}_ci_low_pct"],
                                                      table[f"top1_{protocol}_ci_high_pct"])]
        paper = f"paper top-1 {protocol} (%)"
        out[paper] = csv[f"paper_top1_{protocol}_pct"]
        paper_columns.append(paper)
    if not protocols:
        views = "/".join(sorted(set(csv["views"]))) or "?"
        out[f"val top-1 {views} (%) [95 % CI]"] = [
            _with_interval(*values) for values in zip(table["primary_mean_pct"], table["top1_ci_low_pct"],
                                                      table["top1_ci_high_pct"])]
        out["paper top-1 (%)"] = csv["paper_top1_pct"]
        paper_columns.append("paper top-1 (%)")
    out["val top-1 at the last two evaluations (%)"] = [
        "" if pd.isna(last) else (f"{prev:.2f} → {last:.2f} (epochs {pe} → {le})" if not pd.isna(prev)
                                  else f"{last:.2f} (epoch {le})")
        for prev, last, pe, le in zip(table["val_prev_top1_pct"], table["val_last_top1_pct"],
                                      table["val_prev_epoch"], table["val_last_epoch"])]
    out["best epoch"] = csv["best_epoch"]
    deltas = []
    for delta, sig, base in zip(csv["delta_top1_pct"], csv["significant"], csv["baseline"]):
        if base == "yes":
            deltas.append("baseline")
        elif delta == "":
            deltas.append("")
        else:
            deltas.append(("+" if not delta.startswith("-") else "") + delta + (" *" if sig == "yes" else ""))
    out["Δ top-1 vs baseline (points)"] = deltas
    out["p (Welch)"] = csv["welch_p"]
    if any(csv["paper_source"]):
        out["Δ paper (points)"] = csv["paper_diff_pct"]
        out["paper source"] = csv["paper_source"]
    else:  # no published number for this data set: the columns would be empty
        out = out.drop(columns=paper_columns)
    if any(csv["warnings"]):
        out["warnings"] = csv["warnings"]
    return out.reset_index(drop=True)


def table_notes(table: pd.DataFrame) -> list[str]:
    """What the display columns measure, for the lines under a table."""
    protocols = table.attrs.get("protocols", [])
    notes = []
    if protocols:
        notes.append("top-1 CLIPSxCROPS: the best checkpoint evaluated with that test protocol (clips x crops "
                     "per video); [95 % CI]: two-sided t-interval of the mean over seeds.")
    else:
        notes.append("val top-1: the last validation evaluation; [95 % CI]: two-sided t-interval of the mean "
                     "over seeds.")
    primary = next((m for m in table["primary_metric"] if m), "")
    notes.append(f"Δ and Welch's p (unequal variances, two-sided) on {primary} against the baseline row; "
                 f"* marks p < {SIGNIFICANCE}.")
    if any(table["trained"].astype(str)):
        notes.append("trained: seeds whose training loss left chance (below 0.9 ln K for K classes) after the "
                     "warm-up; a seed that did not train is kept in n and in the mean, and marked in the figures.")
    if DATA_AXIS in table.attrs.get("axis_columns", []):
        notes.append("Runs are pooled over seeds only when they read the same data: runs of one configuration "
                     "whose data digest (the MLflow dataset input) differs are split into rows by the data column.")
    if not any(table["paper_source"].astype(str)):
        notes.append("No published number matches this data set, backbone and frame count.")
    return notes


def to_markdown(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown table (:func:`gsf.markdown.markdown_table`), a line a row."""
    return markdown_table(frame.columns, (row for _, row in frame.iterrows()))


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
    notes = "".join(f"\n- {note}" for note in table_notes(table))
    md_path.write_text(header + to_markdown(display) + notes + "\n", encoding="utf-8")
    tex_path.write_text(to_latex(display, caption=title), encoding="utf-8")
    return [csv_path, md_path, tex_path]
