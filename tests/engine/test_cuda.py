"""The training engine's CUDA paths (marked ``gpu``: skipped without a CUDA device): bf16 autocast chosen by
``runtime.precision=auto``, fp16 with its GradScaler saved and restored, the nccl process group, and SyncBatchNorm
across two GPUs. The data-parallel runs are started by torchrun (tests/engine/recipe_rank_script.py)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import yaml

from gsf.engine import train
from gsf.engine import trainer as trainer_module
from gsf.engine.checkpoint import load_checkpoint
from gsf.engine.config import resolve_device, resolve_precision
from tests.ports import free_port

from .test_recipe import run_two_ranks
from .test_train import Interrupt, StopAfter

pytestmark = pytest.mark.gpu

# CUDA runs: no deterministic algorithms (several CUDA backward kernels have none), no test views
ON_CUDA = ("runtime.device=cuda", "runtime.deterministic=false", "data.test_views=")
LOSS_FN = trainer_module.loss_fn
REPO = Path(__file__).resolve().parents[2]
two_gpus = pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2,
                              reason="needs two CUDA devices")


def test_auto_precision_on_cuda_is_bf16_autocast_with_float32_weights_and_no_scaler(tiny_config, tmp_path,
                                                                                     monkeypatch):
    config = tiny_config("runtime.device=auto", "runtime.precision=auto", "runtime.deterministic=false",
                         "data.test_views=", "optim.epochs=1", "optim.warmup_epochs=0")
    assert resolve_device(config) == "cuda" and resolve_precision(config) == "bf16"
    outputs = []

    def loss(output, labels):
        outputs.append((output.dtype, output.device.type))
        return LOSS_FN(output, labels)

    monkeypatch.setattr(trainer_module, "loss_fn", loss)
    result = train(config, tmp_path)
    assert outputs == [(torch.bfloat16, "cuda")] * 2  # 6 videos, batch 3
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert checkpoint["scaler"] is None
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all()
               for v in checkpoint["model"].values() if v.is_floating_point())
    assert math.isfinite(result["val_top1"])


def test_fp16_on_cuda_saves_the_grad_scaler_state_and_a_resume_restores_it(tiny_config, tmp_path, monkeypatch):
    config = tiny_config(*ON_CUDA, "runtime.precision=fp16")
    with pytest.raises(Interrupt):
        train(config, tmp_path, callbacks=[StopAfter(1)])
    saved = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["scaler"]
    assert isinstance(saved, dict) and {"scale", "growth_factor", "backoff_factor", "growth_interval",
                                        "_growth_tracker"} <= set(saved)
    fresh = torch.amp.GradScaler("cuda").state_dict()
    # after 2 steps the state is not a fresh scaler's: the scale backed off, or the growth tracker counted
    assert (saved["scale"], saved["_growth_tracker"]) != (fresh["scale"], fresh["_growth_tracker"])

    restored = []
    real_restore = trainer_module._Run._restore

    def restore_and_record(run):
        real_restore(run)
        restored.append((run.scaler.is_enabled(), copy.deepcopy(run.scaler.state_dict())))

    monkeypatch.setattr(trainer_module._Run, "_restore", restore_and_record)
    train(config, tmp_path, resume=True)
    assert restored == [(True, saved)]
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 2


def test_a_torchrun_rank_on_cuda_joins_an_nccl_group_on_its_local_device(monkeypatch):
    import torch.distributed as dist

    from gsf.engine import distributed

    port = free_port()
    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(key, value)
    where = distributed.init_from_torchrun("cuda", timeout_s=60)
    assert dist.get_backend() == "nccl" == distributed.backend_for("cuda")
    assert (where.rank, where.world_size) == (0, 1)
    assert distributed.local_device("cuda") == torch.device("cuda", 0)
    total = distributed.all_sum([1.0, 2.0], distributed.local_device("cuda"))
    assert total == [1.0, 2.0]  # a collective over nccl, one process


def two_gpu_run(tiny_config, tmp_path, *overrides) -> list[dict]:
    config = tiny_config(*ON_CUDA, "runtime.world_size=2", "data.batch_size=2", "optim.base_batch_size=4",
                         "optim.epochs=1", "optim.warmup_epochs=0", *overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()), encoding="utf-8")
    run_two_ranks("train", "cuda", tmp_path, path)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@two_gpus
@pytest.mark.slow
def test_two_gpu_ranks_train_over_nccl_into_identical_replicas(tiny_config, tmp_path):
    ranks = two_gpu_run(tiny_config, tmp_path)
    assert [r["backend"] for r in ranks] == ["nccl", "nccl"]
    assert ranks[0]["steps"] == ranks[1]["steps"] == 2  # 6 videos: 3 per rank, batch 2
    assert ranks[0]["training_batch_norms"] == ["BatchNorm2d", "BatchNorm3d"]  # sync_bn off: each rank its own
    for key, value in ranks[0]["weights"].items():
        assert torch.equal(ranks[1]["weights"][key], value), key
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert checkpoint["world_size"] == 2 and checkpoint["step"] == 2


@two_gpus
@pytest.mark.slow
def test_sync_bn_on_two_gpus_normalises_every_batch_norm_over_the_global_batch(tiny_config, tmp_path):
    ranks = two_gpu_run(tiny_config, tmp_path, "runtime.sync_bn=true")
    assert [r["training_batch_norms"] for r in ranks] == [["SyncBatchNorm"], ["SyncBatchNorm"]]
    for key, value in ranks[0]["weights"].items():  # statistics of the global batch: the same on both ranks
        assert torch.equal(ranks[1]["weights"][key], value), key
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert checkpoint["config"]["runtime"]["sync_bn"] is True
    assert checkpoint["model"].keys() == ranks[0]["weights"].keys()  # saved without wrapper prefixes
