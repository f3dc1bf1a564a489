"""`gsf train` says which data it trains on (the fingerprint of gsf.data.fingerprint) and keeps that
fingerprint in its run folder, never in the data set's."""

from __future__ import annotations

import json

from gsf.cli import main
from gsf.data.fingerprint import FINGERPRINT_FILE, fingerprint_dataset

from .test_cli import write_config


def test_gsf_train_prints_the_data_digest_and_caches_it_in_the_run_folder(tmp_path, synth_root, capsys,
                                                                           monkeypatch):
    import experiments.run_logging

    handed = {}

    def fake_training(config, out_dir, *, resume, tracking_uri, experiment, fingerprint=None):
        handed["fingerprint"] = fingerprint
        return {"final_val_top1": 0.5, "final_val_top5": 1.0, "best_val_top1": 0.5, "best_epoch": 1}

    monkeypatch.setattr(experiments.run_logging, "train_from_cli", fake_training)
    before = sorted(p.name for p in synth_root.rglob("*"))
    out = tmp_path / "run"
    assert main(["train", str(write_config(tmp_path, synth_root)), "--out", str(out)]) == 0
    expected = fingerprint_dataset("ssv2", synth_root, ["train", "val"])
    printed = capsys.readouterr().out
    assert f"data ssv2 under {synth_root}: train 6 samples, val 2 samples; digest {expected.digest}" in printed
    assert handed["fingerprint"].digest == expected.digest
    assert json.loads((out / FINGERPRINT_FILE).read_text())["digest"] == expected.digest
    assert sorted(p.name for p in synth_root.rglob("*")) == before


def test_gsf_train_resume_warns_when_the_data_changed_since_the_run_started(tmp_path, synth_root, caplog,
                                                                            monkeypatch):
    import shutil

    import experiments.run_logging

    result = {"final_val_top1": 0.5, "final_val_top5": 1.0, "best_val_top1": 0.5, "best_epoch": 1}
    monkeypatch.setattr(experiments.run_logging, "train_from_cli", lambda *a, **k: result)
    root = shutil.copytree(synth_root, tmp_path / "data")
    config = write_config(tmp_path, root)
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out)]) == 0
    assert main(["train", str(config), "--out", str(out), "--resume"]) == 0
    assert "the data changed" not in caplog.text
    entries = json.loads((root / "train.json").read_text())
    (root / "train.json").write_text(json.dumps(entries[:-1]))
    assert main(["train", str(config), "--out", str(out), "--resume"]) == 0
    assert "the data changed since this run started" in caplog.text
