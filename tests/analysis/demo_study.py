"""A demo-like study (nine variants, three seeds, GMACs 0.0233 to 0.0253, the axes of the demo grid) as run
frames, its study table, history, within-pair rows and run labels, built without MLflow: the figure tests
(tests/analysis/test_figures.py) and the table tests (tests/analysis/test_tables.py) read it."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd

from analysis import tables

VARIANTS = [  # axes of the demo grid: one knob of GSF changed at a time
    ({"model.temporal": "none"}, 0.02331, 0.51, 30.0),
    ({"model.temporal": "tsm"}, 0.02331, 0.51, 70.0),
    ({"model.temporal": "gsm"}, 0.02528, 0.54, 75.0),
    ({"model.temporal": "gsf"}, 0.02530, 0.54, 80.0),
    ({"model.temporal": "gsf", "model.groups": "1"}, 0.02530, 0.54, 82.0),
    ({"model.temporal": "gsf", "model.fusion": "sum"}, 0.02530, 0.54, 79.0),
    ({"model.temporal": "gsf", "model.fusion": "average"}, 0.02530, 0.54, 78.0),
    ({"model.temporal": "gsf", "model.channel_fraction": "0.25"}, 0.02383, 0.52, 60.0),
    ({"model.temporal": "gsf", "model.placement": "after_conv2"}, 0.02384, 0.52, 65.0),
]
AXES = ("model.temporal", "model.groups", "model.fusion", "model.channel_fraction", "model.placement")
DEFAULTS = {"model.temporal": "gsf", "model.groups": "2", "model.fusion": "channel_weighting",
            "model.channel_fraction": "1.0", "model.placement": "None"}
SEEDS, EPOCHS = (0, 1, 2), 8


def demo_like_study() -> dict:
    """Table, history, within-pair rows and run labels of a demo-like study (no MLflow needed)."""
    rng = np.random.default_rng(3)
    runs, history, pairs = [], [], []
    for (changed, gmacs, params_m, level), seed in itertools.product(VARIANTS, SEEDS):
        axes = {**DEFAULTS, **changed}
        config = {**axes, "model.backbone": "resnet_tiny", "data.dataset": "ssv2", "data.num_frames": "8"}
        run_id = f"{'-'.join(axes.values())}-{seed}"
        final = (level + rng.normal(0, 2)) / 100
        runs.append({
            "study": "demo", "run_id": run_id, "run_name": run_id, "status": "FINISHED", "seed": seed,
            "axes": axes, "config": config, "config_key": json.dumps(config, sort_keys=True),
            "baseline": {"model.temporal": "none"}, "backbone": "resnet_tiny", "temporal": axes["model.temporal"],
            "dataset": "ssv2", "frames": 8, "views": "1x1", "gmacs": gmacs, "params": params_m * 1e6,
            "top1": final, "top5": min(1.0, final + 0.2), "best_top1": final, "best_epoch": EPOCHS,
            "config_hash": run_id, "code_version": "abc", "stopped_early": False, "start_time": seed,
            "test_1x1_top1": final, "test_2x3_top1": min(1.0, final + 0.01),
        })
        for epoch in range(1, EPOCHS + 1):
            progress = 1 - np.exp(-epoch / 2)
            history += [{"run_id": run_id, "key": "val_top1", "epoch": epoch, "value": final * progress},
                        {"run_id": run_id, "key": "train_loss", "epoch": epoch, "value": 2.3 * (1.1 - progress)}]
        for pair, name in enumerate(("0 vs 1", "2 vs 3")):
            pairs.append({"label": None, "run_id": run_id, "seed": seed, "pair": pair, "pair_name": name,
                          "within_pair": 0.5 if axes["model.temporal"] == "none" else min(1.0, final + 0.15)})
    runs, history, pairs = pd.DataFrame(runs), pd.DataFrame(history), pd.DataFrame(pairs)
    table = tables.study_table(runs, None, {r: EPOCHS for r in runs["run_id"]}, history)
    label_of = {run_id: label for label, ids in zip(table["label"], table["run_ids"]) for run_id in ids}
    pairs["label"] = pairs["run_id"].map(label_of)
    return {"table": table, "history": history, "pairs": pairs, "labels": label_of}
