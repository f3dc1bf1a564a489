"""`gsf sweep GRID --dry-run`: the training cost of every trial and of the sweep (GMACs of an epoch and of the
run from the data's training clips, device-hours from a throughput or a `gsf bench model` CSV)."""

from __future__ import annotations

import csv
import re

import pytest
from conftest import TINY_GRID, read_grid, resolved

from experiments.grid.complexity import complexity_of
from gsf.bench.model import COLUMNS
from gsf.cli import main

TRAIN_CLIPS = 32  # synth_root: 4 classes x 10 videos, 2 of each class in validation
EPOCHS = 2  # tiny.yaml


def _table(out: str) -> tuple[dict[str, list[str]], list[str]]:
    """Trial rows (slug -> cells) and the total row's non-empty cells of a dry run's output."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("trial "))
    rows, total = {}, []
    for line in lines[start + 1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if line.startswith("total"):
            total = cells
            break
        if not line.startswith("-"):
            rows[cells[0]] = cells
    return rows, total


def _gmacs(root) -> dict[str, float]:
    grid = read_grid(TINY_GRID)
    return {item.slug: complexity_of(item.config_dict).gmacs for item in resolved(grid, extra={"data.root": str(root)})}


def test_dry_run_prints_epoch_and_run_gmacs_and_device_hours_per_trial_and_in_total(synth_root, capsys):
    code = main(["sweep", str(TINY_GRID), "--dry-run", "--set", f"data.root={synth_root}", "--throughput", "16"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows, total = _table(out)
    gmacs = _gmacs(synth_root)
    assert set(rows) == set(gmacs)
    epoch_total = 0.0
    for slug, cells in rows.items():
        clips, epochs, per_epoch, per_run, rate, hours = cells[5:11]
        expected = TRAIN_CLIPS * 1 * 3 * gmacs[slug]
        epoch_total += expected
        assert (int(clips), int(epochs)) == (TRAIN_CLIPS, EPOCHS)
        assert float(per_epoch.replace(",", "")) == pytest.approx(expected, abs=0.5)
        assert float(per_run.replace(",", "")) == pytest.approx(expected * EPOCHS, abs=0.5)
        assert (float(rate), float(hours)) == (16.0, pytest.approx(TRAIN_CLIPS * EPOCHS / 16 / 3600, abs=5e-4))
    assert total[0] == "total"
    assert float(total[1].replace(",", "")) == pytest.approx(epoch_total, abs=1)
    assert float(total[3]) == pytest.approx(len(rows) * TRAIN_CLIPS * EPOCHS / 16 / 3600, abs=5e-4)
    assert "x 3 (forward + backward)" in out


def test_dry_run_reads_each_trials_throughput_from_a_bench_model_csv(synth_root, tmp_path, capsys):
    bench = tmp_path / "model.csv"
    with bench.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for temporal, rate in (("none", 0.032), ("gsf", 0.016)):  # clips/s: 0.555... and 1.111... hours
            writer.writerow({**{c: "" for c in COLUMNS}, "backbone": "resnet_tiny", "temporal": temporal,
                             "fraction": 1.0, "mode": "eager", "frames": 4, "input_px": 32, "train_clips_per_s": rate})
    code = main(["sweep", str(TINY_GRID), "--dry-run", "--set", f"data.root={synth_root}", "--bench", str(bench)])
    out = capsys.readouterr().out
    assert code == 0, out
    rows, total = _table(out)
    hours = {slug: float(cells[10]) for slug, cells in rows.items()}
    assert hours == {"temporal=none,seed=0": pytest.approx(0.556, abs=1e-3),
                     "temporal=gsf,seed=0": pytest.approx(1.111, abs=1e-3)}
    assert float(total[3]) == pytest.approx(1.667, abs=1e-3)


def test_dry_run_without_data_says_how_to_get_the_epoch_cost(tmp_path, capsys):
    code = main(["sweep", str(TINY_GRID), "--dry-run", "--set", f"data.root={tmp_path / 'none'}"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows, _ = _table(out)
    assert all(cells[5] == "?" and cells[7] == "?" for cells in rows.values())
    assert "is not an existing folder; pass --set data.root=PATH for the epoch cost" in out


def test_a_non_positive_throughput_is_refused(synth_root, capsys):
    assert main(["sweep", str(TINY_GRID), "--dry-run", "--set", f"data.root={synth_root}", "--throughput", "0"]) == 2
    assert "--throughput 0.0: clips per second must be > 0" in capsys.readouterr().err
