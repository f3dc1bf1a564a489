"""The one-factor-at-a-time harness of the demo's recipe: its seeds, its starts, its summary of records."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from experiments.demo_factors import apply_start, seed_range, summary
from gsf.models import build_model

CHANCE = math.log(4)


def test_seed_range_reads_ranges_and_lists():
    assert seed_range("0-3") == [0, 1, 2, 3]
    assert seed_range("1,3,5-6") == [1, 3, 5, 6]


def _record(folder, name, *, seed, losses, top1, overrides=(), **extra):
    record = {"seed": seed, "start": "release", "temporal": "gsf", "groups": 2, "data": "/data/synth-demo",
              "overrides": list(overrides), "lr": 0.0015, "threads": 2, "train_loss": losses, "val_top1": [top1] * len(losses),
              "best_val_top1": top1, "did_not_train": min(losses[1:]) >= 0.9 * CHANCE, "seconds": 1.0,
              "machine": "test CPU", **extra}
    (folder / f"{name}.json").write_text(json.dumps(record))


def test_summary_keeps_recipes_apart_and_gives_each_seeds_epoch_leaving_chance(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    # two records written before batch size, epochs and warm-up were recorded (16, 6, 1), one seed dead
    _record(runs, "a", seed=0, losses=[1.39, 1.30, 1.0, 0.5], top1=0.9)
    _record(runs, "b", seed=1, losses=[1.39, 1.40, 1.39, 1.38], top1=0.3)
    _record(runs, "c", seed=1, losses=[1.39, 1.2, 0.4, 0.2], top1=0.95, batch_size=8, epochs=4, num_classes=4)
    # a record without the warm-up field whose overrides set it
    _record(runs, "d", seed=2, losses=[1.39, 1.0, 0.4], top1=0.9, batch_size=8, epochs=4,
            overrides=["optim.warmup_epochs=2"])
    summary(runs)
    table = pd.read_csv(tmp_path / "summary.csv", dtype=str)
    old = table[table["batch_size"] == "16"].squeeze()
    assert (old["epochs"], old["warmup_epochs"], old["trained"], old["did not train (seeds)"]) == ("6", "1", "1 of 2", "1")
    assert old["epoch leaving chance per seed"] == "3 -"  # seed 0: 1.0 < 0.9 ln 4 = 1.25 in epoch 3
    one, two = table[table["batch_size"] == "8"].sort_values("warmup_epochs").to_dict("records")
    assert (one["warmup_epochs"], one["seeds"], one["epoch leaving chance per seed"]) == ("1", "1", "2")
    assert (two["warmup_epochs"], two["seeds"], two["epoch leaving chance per seed"]) == ("2", "2", "2")
    assert len(table) == 3
    assert "epoch leaving chance" in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize("start", ["zero_gate", "default_fusion_init"])
def test_a_start_changes_only_the_gsf_weights_it_names(start):
    model = build_model(backbone="resnet_tiny", num_classes=4, temporal="gsf", pretrained="none")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_start(model, start, seed=0)
    changed = {k for k, v in model.state_dict().items() if not bool((v == before[k]).all())}
    assert changed, start
    named = ("conv3D.",) if start == "zero_gate" else ("channel_conv",)
    assert all(any(part in k for part in named) for k in changed), sorted(changed)
    if start == "zero_gate":
        assert all(float(v.abs().sum()) == 0 for k, v in model.state_dict().items() if "conv3D." in k)


def test_a_run_record_names_its_data_folder_without_the_machines_path(tmp_path, monkeypatch):
    import gsf.engine
    from experiments.demo_factors import run_one

    def fake_train(config, folder):
        lines = [json.dumps({"train_loss": loss, "val_top1": 0.5}) for loss in (1.4, 1.2, 0.3)]
        (Path(folder) / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        return {"num_classes": 4, "best_val_top1": 0.5}

    monkeypatch.setattr(gsf.engine, "train", fake_train)
    data = tmp_path / "somewhere" / "synth-demo"
    record = run_one(seed=0, start="release", data=data, overrides=[], out=tmp_path / "runs")
    assert record["data"] == "synth-demo"
    assert str(tmp_path) not in json.dumps(record)
