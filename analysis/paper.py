"""The paper's confirmed numbers (``analysis/paper_data/*.csv``, package data of this package, described in
``results/paper/README.md``; transcribed by hand from the sources their ``source`` column names) and their join
to measured rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gsf.errors import GSFDataError

PAPER_DIR = Path(__file__).resolve().parent / "paper_data"  # beside this module, checkout or installed
ACCURACY_COLUMNS = ("source", "dataset", "split", "metric", "backbone", "temporal", "frames", "clips", "crops",
                    "value_pct")
COMPLEXITY_COLUMNS = ("source", "backbone", "temporal", "channel_fraction", "frames", "input_size",
                      "gmacs_per_view", "params_m")


def _read(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise GSFDataError(f"paper numbers not found: {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise GSFDataError(f"{path}: missing column(s) {missing}")
    return frame


def load_accuracy(paper_dir: Path = PAPER_DIR) -> pd.DataFrame:
    """``accuracy.csv``: one published accuracy per row, ``value_pct`` in percent, with its ``source``."""
    frame = _read(Path(paper_dir) / "accuracy.csv", ACCURACY_COLUMNS)
    frame["value_pct"] = pd.to_numeric(frame["value_pct"], errors="raise")
    return frame


def load_complexity(paper_dir: Path = PAPER_DIR) -> pd.DataFrame:
    """``complexity.csv``: GMACs per view and parameters (millions) per model, with its ``source``."""
    return _read(Path(paper_dir) / "complexity.csv", COMPLEXITY_COLUMNS)


def _views(views: str) -> tuple[str, str]:
    if "x" in (views or ""):
        clips, crops = views.split("x", 1)
        return clips, crops
    return "", ""


def match_accuracy(paper: pd.DataFrame, *, dataset: str, backbone: str, frames, temporal: str, views: str = "",
                   metric: str = "top1") -> pd.Series | None:
    """The published row for a measured one: same data set, backbone, frames and temporal kind; where
    the source states clips or crops they must match too. The first such row in file order, or None."""
    if frames is None or pd.isna(frames):
        return None
    clips, crops = _views(views)
    hits = paper[(paper["dataset"] == str(dataset)) & (paper["backbone"] == str(backbone))
                 & (paper["frames"] == str(int(frames))) & (paper["temporal"] == str(temporal))
                 & (paper["metric"] == metric)]
    for _, row in hits.iterrows():
        if (row["clips"] in ("", clips)) and (row["crops"] in ("", crops)):
            return row
    return None
