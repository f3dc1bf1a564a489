"""``gsf sweep --register-best NAME`` end to end: a tiny real sweep (two trials, two epochs) registers the model
of its best finished trial as version 1 of NAME, and that version loads, through MLflow's pyfunc loader and
through ``gsf predict``, and predicts what the trial's best checkpoint predicts. The sweep is the session's
shared tiny sweep (conftest's ``tiny_sweep``, run with ``--register-best``; its exit code is checked there)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_SWEEP_MODEL as MODEL
from test_sweep import runs_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registered(tiny_sweep):
    return {"folder": tiny_sweep, "uri": f"sqlite:///{tiny_sweep / 'mlflow.db'}"}


def test_the_best_finished_trial_is_registered_as_version_one(registered):
    from mlflow.tracking import MlflowClient

    from gsf import mlflow_schema as schema

    client = MlflowClient(registered["uri"], registry_uri=registered["uri"])
    (version,) = client.search_model_versions(f"name = '{MODEL}'")
    assert int(version.version) == 1
    _, parents, children = runs_of(registered["folder"])
    assert len(children) == 2 and {r.info.status for r in [*parents, *children]} == {"FINISHED"}
    best = max(r.data.metrics["best_val_top1"] for r in children)
    chosen = next(r for r in children if r.info.run_id == version.run_id)  # one of this sweep's trials
    assert chosen.data.metrics["best_val_top1"] == best
    assert version.tags[schema.PARENT_RUN_ID] == parents[0].info.run_id  # of this sweep


def test_the_registered_version_loads_and_predicts_what_its_trials_checkpoint_predicts(registered, synth_root,
                                                                                         capsys):
    import mlflow
    import numpy as np

    from gsf.cli import main
    from gsf.inference.predict import Predictor
    from gsf.mlflow_uris import mlflow_uris

    uri, name = registered["uri"], f"models:/{MODEL}/1"
    with mlflow_uris(uri, registry=True):
        pyfunc = mlflow.pyfunc.load_model(name)
        (spec,) = pyfunc.metadata.get_input_schema().inputs
        assert spec.shape == (1, 4, 3, 32, 32)  # one view of the grid's 4 frames of 32 px
        assert pyfunc.predict(np.zeros(spec.shape, np.float32))["logits"].shape == (1, 4)
        logged = Predictor.from_model_file(name)

    from mlflow.tracking import MlflowClient

    (version,) = MlflowClient(uri, registry_uri=uri).search_model_versions(f"name = '{MODEL}'")
    slug = MlflowClient(uri).get_run(version.run_id).data.tags["gsf.slug"]
    # the registered trial's engine folder (its Tune trial folder is named <trial id>_<slug>)
    (engine,) = [p for p in (registered["folder"] / "sweeps" / "s").glob("*/engine") if p.parent.name.endswith(slug)]
    checkpoint = Predictor.from_checkpoint(engine / "checkpoints" / "best.pt")
    videos = sorted((synth_root / "20bn-something-something-v2").glob("*.webm"))[:2]
    for video in videos:
        torch.testing.assert_close(logged.logits(video, views="1x1"), checkpoint.logits(video, views="1x1"),
                                   rtol=1e-4, atol=1e-4)
    assert main(["predict", "--model", name, "--tracking-uri", uri, "--json", *map(str, videos)]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["top_k"][0]["index"] for r in results] == [
        int(checkpoint.logits(v, views=checkpoint.preprocessing.views).argmax()) for v in videos]

