"""A real MLflow SQLite store in the sweep runner's layout (docs/CONTRIBUTING.md, "Grids and
MLflow layout"), logged through the MLflow client: parent sweep runs, trial children with tags, params,
per-epoch metrics, a FAILED trial, a missing seed, score CSV artifacts.

``logged`` keeps what was logged so tests compute expectations independently of ``analysis``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

NUM_CLASSES = 4  # synthetic: pairs (0, 1) and (2, 3)
EPOCHS = 3


def _metric(key, value, step):
    from mlflow.entities import Metric

    return Metric(key, float(value), 0, step)


def _log_trial(client, experiment_id, parent_id, *, study, grid, table, axes, params, seed, status, rng,
               config_hash, top1_final=None, scores_csv=None, epochs=EPOCHS, gmacs=1.5, n_params=2e6):
    from mlflow.entities import Param, RunTag

    slug = "-".join(f"{k.rsplit('.', 1)[-1]}{v}" for k, v in axes.items()) + f"-seed{seed}"
    tags = {"mlflow.parentRunId": parent_id, "gsf.role": "trial", "gsf.slug": slug, "gsf.config_hash": config_hash,
            "gsf.grid": grid, "gsf.table": table, "gsf.sweep_id": "sweep1", "gsf.seed": str(seed),
            "gsf.code_version": "abc123", **{f"gsf.axis.{k}": str(v) for k, v in axes.items()}}
    run = client.create_run(experiment_id, run_name=slug)
    run_id = run.info.run_id
    flat = {**params, **axes, "runtime.seed": seed}
    metrics = [_metric("gmacs", gmacs, 0), _metric("gmacs_all_ops", gmacs * 1.1, 0), _metric("params", n_params, 0),
               _metric("temporal_params", 100, 0), _metric("temporal_modules", 2, 0)]
    val = []
    for epoch in range(1, epochs + 1):
        top1 = top1_final if (epoch == epochs and top1_final is not None) else float(rng.uniform(0.2, 0.9))
        val.append(top1)
        metrics += [_metric("train_loss", 2.0 / epoch + rng.uniform(0, 0.1), epoch), _metric("val_top1", top1, epoch),
                    _metric("val_top5", min(1.0, top1 + 0.1), epoch), _metric("epoch", epoch, epoch)]
    record = {"run_id": run_id, "seed": seed, "status": status, "axes": axes, "config_hash": config_hash}
    if status == "FINISHED":
        best = int(np.argmax(val)) + 1
        metrics += [_metric("best_val_top1", max(val), epochs), _metric("best_epoch", best, epochs),
                    _metric("final_val_top1", val[-1], epochs), _metric("final_val_top5", min(1.0, val[-1] + 0.1), epochs),
                    _metric("final_val_mean_class_acc", val[-1], epochs)]
        record.update(top1=val[-1], top5=min(1.0, val[-1] + 0.1), best_epoch=best, best_top1=max(val))
    client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in flat.items()],
                     tags=[RunTag(k, v) for k, v in tags.items()])
    if scores_csv is not None:
        client.log_artifact(run_id, str(scores_csv), artifact_path="scores")
    client.set_terminated(run_id, status)
    return record


def _scores(path, rng, *, temporal: bool):
    """Per-video scores: 5 videos per class; a temporal model separates pairs, TSN does not."""
    labels = np.repeat(np.arange(NUM_CLASSES), 5)
    scores = rng.normal(0, 1, size=(len(labels), NUM_CLASSES))
    if temporal:
        scores[np.arange(len(labels)), labels] += 2.5
    lines = ["video_id,label," + ",".join(f"score_{k}" for k in range(NUM_CLASSES))]
    for i, (label, row) in enumerate(zip(labels, scores)):
        lines.append(f"{100 + i},{label}," + ",".join(f"{v:.6f}" for v in row))
    path.write_text("\n".join(lines) + "\n")
    return labels, scores


@pytest.fixture(scope="package")
def tracking_store(tmp_path_factory):
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    rng = np.random.default_rng(0)
    logged = {"uri": uri, "root": root, "studies": {}, "scores": {}, "sweep_runs": {}}

    # study 1: synthetic channel-fraction ablation, baseline recorded on the parent sweep run
    study = "gsf-channel-fraction"
    exp = client.create_experiment(study, artifact_location=(root / "artifacts1").as_uri())
    parent = client.create_run(exp, run_name="sweep1", tags={
        "gsf.role": "sweep", "gsf.grid": "channel_fraction", "gsf.sweep_id": "sweep1", "gsf.table": "channel_fraction",
        "gsf.baseline": json.dumps({"model.temporal": "none"})})
    base = {"model.backbone": "resnet_tiny", "data.dataset": "ssv2", "data.root": str(root / "no-such-synthetic"),
            "data.num_frames": 8, "data.input_size": 64, "data.val_views": "[1, 1]", "optim.lr": 0.01}
    records = []
    variants = [({"model.temporal": "none", "model.channel_fraction": 1.0}, 0.3, 1.0),
                ({"model.temporal": "gsf", "model.channel_fraction": 1.0}, 0.8, 1.2),
                ({"model.temporal": "gsf", "model.channel_fraction": 0.5}, 0.6, 1.1)]
    for axes, level, gmacs in variants:
        for seed in (0, 1, 2):
            status = "FINISHED"
            if axes["model.channel_fraction"] == 0.5 and seed == 1:
                continue  # a missing trial
            if axes["model.channel_fraction"] == 0.5 and seed == 2:
                status = "FAILED"
            csv = None
            if seed == 0 and axes["model.channel_fraction"] == 1.0:
                csv_named = root / axes["model.temporal"] / f"val_epoch{EPOCHS}.csv"
                csv_named.parent.mkdir()
                logged["scores"][axes["model.temporal"]] = _scores(csv_named, rng, temporal=axes["model.temporal"] != "none")
                csv = csv_named
            records.append(_log_trial(
                client, exp, parent.info.run_id, study=study, grid="channel_fraction", table="channel_fraction",
                axes=axes, params=base, seed=seed, status=status, rng=rng, top1_final=level + 0.05 * rng.normal(),
                config_hash=f"h-{axes['model.temporal']}-{axes['model.channel_fraction']}-{seed}", scores_csv=csv,
                epochs=EPOCHS if status == "FINISHED" else 2, gmacs=gmacs))
    client.set_terminated(parent.info.run_id, "FINISHED")
    logged["studies"][study] = records
    logged["sweep_runs"][study] = parent.info.run_id

    # study 2: paper backbones on SSv1, no baseline recorded (TSN row is the baseline); seed 0 of the GSF
    # row logged twice with different config hashes
    study = "gsf-backbones"
    exp = client.create_experiment(study, artifact_location=(root / "artifacts2").as_uri())
    parent = client.create_run(exp, run_name="sweep2", tags={"gsf.role": "sweep", "gsf.grid": "backbones",
                                                             "gsf.sweep_id": "sweep2", "gsf.table": "backbones"})
    base = {"model.backbone": "bninception", "data.dataset": "ssv1", "data.root": "/data/ssv1",
            "data.num_frames": 16, "data.input_size": 224, "data.val_views": "1x1"}
    records = []
    for temporal, level in (("none", 0.2), ("gsf", 0.5)):
        for seed in (0, 1):
            records.append(_log_trial(
                client, exp, parent.info.run_id, study=study, grid="backbones", table="backbones",
                axes={"model.temporal": temporal}, params=base, seed=seed, status="FINISHED", rng=rng,
                top1_final=level + 0.01 * seed, config_hash=f"b-{temporal}-{seed}", gmacs=16.3, n_params=10.5e6))
    records.append(_log_trial(
        client, exp, parent.info.run_id, study=study, grid="backbones", table="backbones",
        axes={"model.temporal": "gsf"}, params=base, seed=0, status="FINISHED", rng=rng, top1_final=0.9,
        config_hash="b-gsf-0-other", gmacs=16.3, n_params=10.5e6))
    client.set_terminated(parent.info.run_id, "FINISHED")
    logged["studies"][study] = records
    logged["sweep_runs"][study] = parent.info.run_id
    return logged
