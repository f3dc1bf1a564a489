"""`gsf bench model` on a tiny ResNet: the table's columns, its file name, TSN as the ratio baseline."""

import csv

from gsf.bench import model as bench
from gsf.cli import main


def test_bench_model_writes_the_table_with_tsn_as_ratio_baseline(tmp_path):
    rc = main(["bench", "model", "--backbone", "resnet_tiny", "--temporal", "none", "gsf", "--fractions", "0.5",
               "1.0", "--frames", "2", "--size", "32", "--repeats", "1", "--warmup", "0", "--threads", "1",
               "--out", str(tmp_path)])
    assert rc == 0
    tag = bench.conditions_tag(device="cpu", dtype="float32", channels_last=False, compile=False, threads=1)
    assert tag.startswith("cpu-float32-pt") and tag.endswith("-t1")
    with open(tmp_path / f"model-infer-train-{tag}.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == bench.COLUMNS
    assert [r["model"] for r in rows] == ["resnet_tiny_tsn", "resnet_tiny_gsf_fraction0.5", "resnet_tiny_gsf_fraction1"]
    tsn = rows[0]
    assert float(tsn["ratio_infer"]) == 1.0 and float(tsn["ratio_train"]) == 1.0
    assert all(float(r["infer_ms"]) > 0 and float(r["train_step_ms"]) > 0 for r in rows)
    assert float(rows[2]["gmacs"]) >= float(tsn["gmacs"]) > 0
    assert int(rows[2]["params"]) > int(tsn["params"])
    assert rows[0]["peak_train_mem_mb"] != ""
    assert (tmp_path / f"model-infer-train-{tag}.md").read_text().startswith("# Model speed and memory")


def test_variants_put_tsn_first_and_give_tsm_no_fraction():
    assert bench._variants(("gsf", "tsm", "none"), (0.25, 1.0)) == [
        ("none", 1.0), ("gsf", 0.25), ("gsf", 1.0), ("tsm", 1.0)]
