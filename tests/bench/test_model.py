"""`gsf bench model` on a tiny ResNet: the table's columns, its file name, TSN as the ratio baseline, and the
code path of the prepared GPU command (several clip lengths, eager beside compiled, both GSF paths, the
time budget) run on CPU with dynamo's eager backend."""

import csv

import pytest

from gsf.bench import model as bench
from gsf.cli import main
from gsf.errors import GSFConfigError


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_bench_model_writes_the_table_with_tsn_as_ratio_baseline(tmp_path):
    rc = main(["bench", "model", "--backbone", "resnet_tiny", "--temporal", "none", "gsf", "--fractions", "0.5",
               "1.0", "--frames", "2", "--size", "32", "--repeats", "1", "--warmup", "0", "--threads", "1",
               "--out", str(tmp_path)])
    assert rc == 0
    tag = bench.conditions_tag(device="cpu", dtype="float32", channels_last=False, modes=("eager",), threads=1)
    assert tag.startswith("cpu-float32-pt") and tag.endswith("-t1")
    rows = _read(tmp_path / f"model-infer-train-{tag}.csv")
    assert tuple(rows[0]) == bench.COLUMNS
    assert [r["model"] for r in rows] == ["resnet_tiny_tsn", "resnet_tiny_gsf_fraction0.5", "resnet_tiny_gsf_fraction1"]
    assert [r["gsf_path"] for r in rows] == ["", "fused", "fused"]  # the CPU's own path
    tsn = rows[0]
    assert float(tsn["ratio_infer"]) == 1.0 and float(tsn["ratio_train"]) == 1.0
    assert all(float(r["infer_ms"]) > 0 and float(r["train_step_ms"]) > 0 for r in rows)
    assert float(rows[2]["gmacs"]) >= float(tsn["gmacs"]) > 0
    assert int(rows[2]["params"]) > int(tsn["params"])
    assert rows[0]["peak_train_mem_mb"] != ""
    assert (tmp_path / f"model-infer-train-{tag}.md").read_text().startswith("# Model speed and memory")


@pytest.mark.slow
def test_the_gpu_command_code_path_runs_on_cpu(tmp_path, capsys):
    # The prepared `--device cuda` command's code path at toy size: 2 clip lengths, eager and compiled side
    # by side, GSF on its device path and forced composed (the CUDA default); TSM and fraction 0.25 are the
    # same code for other models, left out to keep dynamo's tracing time down.
    rc = main(["bench", "model", "--backbone", "resnet_tiny", "--temporal", "gsf", "--fractions", "1.0",
               "--gsf-paths", "auto", "composed", "--frames", "2", "3", "--batch", "2", "--size", "32",
               "--modes", "eager", "compile", "--compile-backend", "eager", "--repeats", "2", "--warmup", "1",
               "--threads", "1", "--no-memory", "--budget-s", "86400", "--out", str(tmp_path)])
    assert rc == 0
    tag = bench.conditions_tag(device="cpu", dtype="float32", channels_last=False, modes=("eager", "compile"),
                               threads=1)
    assert "-eager-compile-" in tag
    rows = _read(tmp_path / f"model-infer-train-{tag}.csv")
    models = ["resnet_tiny_tsn", "resnet_tiny_gsf_fraction1", "resnet_tiny_gsf_fraction1_composed"]
    assert [(r["frames"], r["model"], r["mode"]) for r in rows] == [
        (t, m, mode) for t in ("2", "3") for m in models for mode in ("eager", "compile")]
    # every row timed, none skipped; a toy eager warm-up can round to 0.0 s in the table
    assert all(float(r["infer_ms"]) > 0 and float(r["train_clips_per_s"]) > 0 and float(r["warmup_s"]) >= 0
               and not r["note"] for r in rows)
    assert {r["gsf_path"] for r in rows if r["model"].endswith("_composed")} == {"composed"}
    for t in ("2", "3"):
        for mode in ("eager", "compile"):
            tsn = next(r for r in rows if r["frames"] == t and r["mode"] == mode and r["temporal"] == "none")
            assert float(tsn["ratio_infer"]) == 1.0 and float(tsn["ratio_train"]) == 1.0
    out = capsys.readouterr().out
    assert "T=3 resnet_tiny_gsf_fraction1_composed compile: warm-up" in out  # progress lines


def test_compiled_rows_take_the_composed_path_skip_the_fused_one_and_measure_memory(tmp_path):
    rc = main(["bench", "model", "--backbone", "resnet_tiny", "--temporal", "gsf", "--fractions", "1.0",
               "--gsf-paths", "auto", "fused", "--frames", "2", "--size", "32", "--modes", "eager", "compile",
               "--compile-backend", "eager", "--repeats", "1", "--warmup", "1", "--threads", "1", "--no-gmacs",
               "--out", str(tmp_path)])
    assert rc == 0
    tag = bench.conditions_tag(device="cpu", dtype="float32", channels_last=False, modes=("eager", "compile"),
                               threads=1)
    rows = {(r["model"], r["mode"]): r for r in _read(tmp_path / f"model-infer-train-{tag}.csv")}
    assert rows["resnet_tiny_gsf_fraction1", "eager"]["gsf_path"] == "fused"  # auto, eager on CPU
    assert rows["resnet_tiny_gsf_fraction1", "compile"]["gsf_path"] == "composed"  # auto, compiled
    skipped = rows["resnet_tiny_gsf_fraction1_fused", "compile"]
    assert skipped["note"].startswith("fused path not compiled") and skipped["infer_ms"] == ""
    timed = [r for r in rows.values() if r["infer_ms"]]
    assert len(timed) == 5
    assert all(float(r["peak_train_mem_mb"]) >= 0 for r in timed)  # compiled rows measured too


@pytest.mark.parametrize("mode", ["eager", "compile"])
def test_cpu_peak_training_memory_follows_the_activations_size(mode):
    # 4x the pixels: the step's activations and their gradients take about 4x the memory.
    def peak(size):
        return bench._cpu_peak_train_mb({
            "backbone": "resnet_tiny", "temporal": "gsf", "fraction": 1.0, "gsf_path": "auto", "frames": 2,
            "batch": 2, "size": size, "device": "cpu", "dtype": "float32", "channels_last": False, "threads": 1,
            "mode": mode, "compile_backend": "eager"})

    small, large = peak(32), peak(128)
    assert small > 0 and large > 3 * small


def test_time_budget_skips_warm_ups_that_would_not_fit(tmp_path, monkeypatch):
    # 60 s fit the eager warm-ups (first estimate 5 s, then the longest measured, well under a second here) but
    # not a compile (first estimate 90 s). The budget's clock is held at 0 s spent, so the decisions do not
    # depend on how loaded the machine is.
    monkeypatch.setattr(bench._Clock, "elapsed", lambda self: 0.0)
    rows = bench.bench_model(backbones=("resnet_tiny",), temporal=("gsf",), fractions=(1.0,), frames=2, size=32,
                             modes=("eager", "compile"), compile_backend="eager", repeats=3, warmup=1, threads=1,
                             memory=False, gmacs=False, budget_s=60, out_dir=tmp_path)
    assert [(r["model"], r["mode"]) for r in rows] == [
        ("resnet_tiny_tsn", "eager"), ("resnet_tiny_tsn", "compile"),
        ("resnet_tiny_gsf_fraction1", "eager"), ("resnet_tiny_gsf_fraction1", "compile")]
    eager = [r for r in rows if r["mode"] == "eager"]
    compiled = [r for r in rows if r["mode"] == "compile"]
    assert all(r["infer_ms"] > 0 and r["ratio_train"] is not None for r in eager)
    assert all(r["infer_ms"] is None and r["ratio_infer"] is None and "skipped: time budget" in r["note"]
               for r in compiled)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"modes": ("compile",), "warmup": 0}, "--warmup >= 1"),
    ({"modes": ("jit",)}, "--modes must be"),
    ({"gsf_paths": ("triton",)}, "--gsf-paths must be"),
    ({"frames": (8, 0)}, "--frames must be positive"),
    ({"budget_s": 0}, "--budget-s must be positive"),
])
def test_bad_arguments_are_rejected_naming_the_flag(kwargs, fragment):
    with pytest.raises(GSFConfigError, match=fragment.replace("+", r"\+")):
        bench.bench_model(backbones=("resnet_tiny",), out_dir=None, **kwargs)


def test_variants_put_tsn_first_and_give_tsm_no_fraction():
    assert bench._variants(("gsf", "tsm", "none"), (0.25, 1.0)) == [
        ("none", 1.0, "auto"), ("gsf", 0.25, "auto"), ("gsf", 1.0, "auto"), ("tsm", 1.0, "auto")]
    assert bench._variants(("gsf",), (1.0,), ("auto", "fused")) == [
        ("none", 1.0, "auto"), ("gsf", 1.0, "auto"), ("gsf", 1.0, "fused")]


def test_bench_model_times_tam_and_tin_built_for_each_clip_length(tmp_path):
    rows = bench.bench_model(backbones=("resnet_tiny",), temporal=("tam", "tin"), frames=(2, 3), size=32, repeats=1,
                             warmup=0, threads=1, memory=False, out_dir=None)
    assert [(r["frames"], r["model"]) for r in rows] == [
        (t, f"resnet_tiny_{kind}") for t in (2, 3) for kind in ("tsn", "tam", "tin")]
    assert all(r["infer_ms"] > 0 and r["train_step_ms"] > 0 and r["gsf_path"] == "" for r in rows)
    assert rows[1]["gmacs"] > rows[0]["gmacs"]  # TAM's aggregation conv is counted
