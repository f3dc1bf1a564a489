"""Per-class and within-pair accuracy from a run's per-video score CSV (artifact ``scores/*.csv``).

Accepted CSV format (the engine writes one row per video): ``video_id``, ``label`` (int class index),
then either one score column per class (``score_<k>``, ``logit_<k>``, ``prob_<k>``, ``class_<k>`` or a
bare ``<k>``; any monotone score: logits or probabilities), or a predicted class (``pred``,
``prediction``, ``predicted`` or ``predicted_label``), or both. Other columns are ignored.

Within-pair accuracy (the synthetic benchmark, :func:`gsf.data.synthetic_pairs`): for a video of pair
(a, b) with true class a, whether its score for a beats its score for b. The two classes of a pair have
the same distribution of single frames, so a frame-order-blind model (TSN) sits at 0.5.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gsf.errors import GSFDataError

_SCORE_COLUMN = re.compile(r"^(?:(?:score|logit|logits|prob|class)_?)?(\d+)$")
_PRED_COLUMNS = ("pred", "prediction", "predicted", "predicted_label")


def read_scores(path: Path) -> dict:
    """``{"video_id": array, "label": int array, "scores": (N, K) array or None, "pred": int array}``.

    ``pred`` is the argmax of the scores when scores are present (ties to the lower class), else the
    CSV's prediction column.
    """
    path = Path(path)
    frame = pd.read_csv(path)
    if "label" not in frame.columns:
        raise GSFDataError(f"{path}: score CSV has no 'label' column (columns: {list(frame.columns)})")
    score_columns = {}
    for column in frame.columns:
        match = _SCORE_COLUMN.match(str(column))
        if match:
            score_columns[int(match.group(1))] = column
    scores = None
    if score_columns:
        num_classes = max(score_columns) + 1
        if sorted(score_columns) != list(range(num_classes)):
            raise GSFDataError(f"{path}: score columns are not classes 0..{num_classes - 1}: "
                               f"{sorted(score_columns)}")
        scores = frame[[score_columns[k] for k in range(num_classes)]].to_numpy(dtype=float)
        pred = scores.argmax(axis=1)
    else:
        column = next((c for c in _PRED_COLUMNS if c in frame.columns), None)
        if column is None:
            raise GSFDataError(f"{path}: score CSV has neither per-class score columns nor a prediction "
                               f"column ({', '.join(_PRED_COLUMNS)})")
        pred = frame[column].to_numpy(dtype=int)
    video_id = frame["video_id"].astype(str).to_numpy() if "video_id" in frame.columns else np.arange(len(frame))
    return {"video_id": video_id, "label": frame["label"].to_numpy(dtype=int), "scores": scores, "pred": pred}


def class_accuracy(scores: Mapping) -> pd.DataFrame:
    """``class, videos, top1``: per-class accuracy of the predictions."""
    label, pred = np.asarray(scores["label"]), np.asarray(scores["pred"])
    rows = [{"class": int(k), "videos": int((label == k).sum()), "top1": float((pred[label == k] == k).mean())}
            for k in np.unique(label)]
    return pd.DataFrame(rows, columns=["class", "videos", "top1"])


def pair_accuracy(scores: Mapping, pairs: Sequence[tuple[int, int]]) -> pd.DataFrame:
    """``pair, forward, reversed, videos, within_pair, top1`` per pair.

    ``within_pair`` needs per-class scores; with predictions only it is the accuracy among the videos
    whose prediction falls inside their own pair (NaN when none does), and ``method`` says which.
    """
    label, pred, score = np.asarray(scores["label"]), np.asarray(scores["pred"]), scores["scores"]
    rows = []
    for index, (a, b) in enumerate(pairs):
        mask = (label == a) | (label == b)
        n = int(mask.sum())
        if score is not None and n:
            own = score[mask, label[mask]]
            partner = score[mask, np.where(label[mask] == a, b, a)]
            within, method = float((own > partner).mean()), "scores"
        else:
            inside = mask & ((pred == a) | (pred == b))
            within = float((pred[inside] == label[inside]).mean()) if inside.any() else float("nan")
            method = "predictions"
        top1 = float((pred[mask] == label[mask]).mean()) if n else float("nan")
        rows.append({"pair": index, "forward": int(a), "reversed": int(b), "videos": n,
                     "within_pair": within, "top1": top1, "method": method})
    return pd.DataFrame(rows, columns=["pair", "forward", "reversed", "videos", "within_pair", "top1", "method"])


def looks_synthetic(params: Mapping[str, str], *names: str) -> bool:
    """Whether a run trained on the synthetic benchmark: its data set, data root, study or grid name
    mentions "synth"."""
    texts = [params.get("data.dataset", ""), params.get("data.root", ""), *names]
    return any("synth" in str(t).lower() for t in texts)


def pairs_for_run(params: Mapping[str, str], num_classes: int, *names: str) -> list[tuple[int, int]]:
    """Direction pairs of a run: from ``labels.json`` under its ``data.root`` when that exists, else, for a
    synthetic run, from the synthetic class order (pair p = classes 2p, 2p + 1). Empty when not synthetic."""
    from gsf.data.synth import class_names, synthetic_pairs

    root = params.get("data.root")
    if root:
        for candidate in (Path(root) / "labels.json", Path(root) / "labels" / "labels.json"):
            if candidate.is_file():
                found = synthetic_pairs(json.loads(candidate.read_text()))
                if found:
                    return found
    if looks_synthetic(params, *names) and num_classes >= 2 and num_classes % 2 == 0:
        try:
            return synthetic_pairs(class_names(num_classes))
        except ValueError:
            return []
    return []
