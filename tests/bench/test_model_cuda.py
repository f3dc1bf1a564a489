"""`gsf bench model --device cuda` on a tiny ResNet (marked ``gpu``: skipped without a CUDA device): the file is
named after the GPU, GSF rows take the composed path by default and the fused one when asked, and peak training
memory is measured on the GPU."""

from __future__ import annotations

import csv

import pytest
import torch

from gsf.bench import model as bench
from gsf.cli import main

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_bench_model_on_cuda_times_both_gsf_paths_and_measures_gpu_memory(tmp_path, capsys, dtype):
    rc = main(["bench", "model", "--backbone", "resnet_tiny", "--temporal", "none", "gsf", "--fractions", "1.0",
               "--gsf-paths", "auto", "fused", "--frames", "2", "--batch", "2", "--size", "64", "--device", "cuda",
               "--dtype", dtype, "--repeats", "2", "--warmup", "1", "--out", str(tmp_path)])
    assert rc == 0
    tag = bench.conditions_tag(device="cuda", dtype=dtype, channels_last=False, modes=("eager",),
                               threads=torch.get_num_threads())
    gpu = torch.cuda.get_device_name().replace(" ", "").replace("NVIDIA", "").lower()
    assert tag.startswith(f"cuda-{gpu}-{dtype}-pt")
    with open(tmp_path / f"model-infer-train-{tag}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["resnet_tiny_tsn", "resnet_tiny_gsf_fraction1",
                                          "resnet_tiny_gsf_fraction1_fused"]
    assert [r["gsf_path"] for r in rows] == ["", "composed", "fused"]
    for row in rows:
        assert float(row["infer_ms"]) > 0 and float(row["train_step_ms"]) > 0, row["model"]
        assert float(row["peak_train_mem_mb"]) > 0, row["model"]  # torch.cuda.max_memory_allocated
        assert not row["note"], row["model"]
    assert float(rows[0]["ratio_infer"]) == float(rows[0]["ratio_mem"]) == 1.0
    assert f"GPU {torch.cuda.get_device_name()}" in (tmp_path / f"model-infer-train-{tag}.md").read_text()


@pytest.mark.slow
def test_the_prepared_gpu_command_at_toy_size_compiles_the_composed_path_and_not_the_fused_one(tmp_path):
    # the prepared command of results/benchmarks/README.md, shrunk: bf16, channels_last, eager beside compiled
    rc = main(["bench", "model", "--device", "cuda", "--backbone", "resnet_tiny", "--temporal", "gsf", "tsm",
               "--fractions", "1.0", "--gsf-paths", "auto", "fused", "--frames", "2", "--batch", "2", "--size", "64",
               "--dtype", "bfloat16", "--channels-last", "--modes", "eager", "compile", "--repeats", "2",
               "--warmup", "1", "--budget-s", "600", "--out", str(tmp_path)])
    assert rc == 0
    tag = bench.conditions_tag(device="cuda", dtype="bfloat16", channels_last=True, modes=("eager", "compile"),
                               threads=torch.get_num_threads())
    assert "-bfloat16-nhwc-eager-compile-pt" in tag
    with open(tmp_path / f"model-infer-train-{tag}.csv") as f:
        rows = {(r["model"], r["mode"]): r for r in csv.DictReader(f)}
    models = ["resnet_tiny_tsn", "resnet_tiny_tsm", "resnet_tiny_gsf_fraction1", "resnet_tiny_gsf_fraction1_fused"]
    assert set(rows) == {(m, mode) for m in models for mode in ("eager", "compile")}
    skipped = rows[("resnet_tiny_gsf_fraction1_fused", "compile")]
    assert skipped["infer_ms"] == "" and "fused path not compiled on cuda" in skipped["note"]
    for key, row in rows.items():
        if key != ("resnet_tiny_gsf_fraction1_fused", "compile"):
            assert float(row["infer_ms"]) > 0 and float(row["peak_train_mem_mb"]) > 0 and not row["note"], key
    assert rows[("resnet_tiny_gsf_fraction1", "compile")]["gsf_path"] == "composed"
