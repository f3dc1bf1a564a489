"""gsf bench fingerprint: the fingerprint of each written layout counts what was written, the cached one is the
fresh one, the table is written, and nothing is left in the temporary folder."""

import argparse
import csv
import tempfile

import pytest

from gsf.bench import fingerprint as bench
from gsf.errors import GSFConfigError


def test_each_case_fingerprints_the_samples_it_wrote_and_the_cache_gives_the_fresh_digest(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    rows = bench.bench_fingerprint(num_files=300, frames_per_folder=10, repeats=1)
    videos, frames, cached = rows
    assert (videos["layout"], videos["train_samples"], videos["val_samples"]) == ("ssv2-videos", 300, 100)
    assert videos["files_under_root"] == 300 + 3  # the videos and the three annotation files
    assert (frames["layout"], frames["train_samples"], frames["val_samples"]) == ("ssv1-frames", 30, 30)
    assert frames["files_under_root"] == 300 + 3
    assert cached["fingerprint"].startswith("cached") and cached["digest"] == frames["digest"] != videos["digest"]
    assert all(row["cpu_s"] >= 0 and row["wall_s"] >= 0 for row in rows)
    assert list(tmp_path.iterdir()) == []  # the data were removed


def test_the_command_writes_its_table_and_refuses_a_count_below_one(tmp_path, capsys):
    args = argparse.Namespace(files=40, frames_per_folder=4, repeats=1, out=str(tmp_path))
    assert bench.run(args) == 0
    (table,) = tmp_path.glob("fingerprint-cpu*.csv")
    with open(table, newline="") as f:
        assert [row["layout"] for row in csv.DictReader(f)] == ["ssv2-videos", "ssv1-frames", "ssv1-frames"]
    assert table.with_suffix(".md").read_text().startswith("# Data fingerprint cost")
    with pytest.raises(GSFConfigError, match="--frames-per-folder must be >= 1, got 0"):
        bench.run(argparse.Namespace(files=40, frames_per_folder=0, repeats=1, out=None))
