"""``gsf bench overhead`` runs end to end and writes its table (no timing assertions)."""

import csv

import pytest

from gsf.cli import main


@pytest.mark.slow
def test_overhead_benchmark_writes_every_measurement(tmp_path):
    assert main(["bench", "overhead", "--repeats", "1", "--threads", "1", "--frames", "4", "--out", str(tmp_path)]) == 0
    files = list(tmp_path.glob("overhead-cpu-pt*-t1.csv"))
    assert len(files) == 1 and files[0].with_suffix(".md").is_file()
    rows = {r["measurement"]: r for r in csv.DictReader(files[0].open())}
    for name in ("one tiny trial via gsf train", "the same trial via gsf sweep", "local Ray start-up (ray.init)",
                 "loader clips/s, 0 workers", "loader clips/s, 2 workers", "model consumption clips/s (train step)"):
        assert float(rows[name]["value"]) > 0
    assert rows["input-bound"]["value"] in ("yes", "no")
