"""Data-parallel training (DDP, gloo on CPU, 2 processes started by torchrun or Ray Train) on a tiny synthetic
set with an odd number of videos: identical replicas, only rank 0 writes, the all-reduced gradient is the full
batch's, sharded evaluation gives one process's numbers, exact resume after a killed run, and the entry
points (``torchrun -m experiments.torchrun_train``, ``gsf train --nproc``). The code run in the ranks is
tests/engine/ddp_rank_script.py."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from gsf.engine.checkpoint import load_checkpoint
from gsf.engine.config import TrainConfig, load_config
from gsf.engine.evaluate import evaluate_checkpoint, merge_predictions, predict_views
from gsf.engine.trainer import lr_factor, scaled_lr
from gsf.errors import GSFCheckpointError, GSFConfigError, GSFDataError
from tests.ports import free_port

from .conftest import TINY
from .ddp_rank_script import fixed_model_and_batch, seeded_model

SCRIPT = Path(__file__).with_name("ddp_rank_script.py")
REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 600  # a whole torchrun launch; a hang fails the test instead of blocking it


@pytest.fixture(scope="module")
def odd_root(tmp_path_factory):
    """5 train and 3 validation videos (2 classes): the train sampler pads, the validation shards differ."""
    from gsf.data import synthesize_dataset

    root = tmp_path_factory.mktemp("odd")
    synthesize_dataset(root, num_classes=2, videos_per_class=5, num_frames=8, size=32, seed=2, val_fraction=0.4)
    for split, keep in (("train.json", 5), ("validation.json", 3)):
        entries = json.loads((root / split).read_text())
        (root / split).write_text(json.dumps(entries[:keep]))
    return root


def ddp_config(root, *overrides: str) -> TrainConfig:
    return load_config(None, [*TINY, f"data.root={root}", "data.batch_size=2", "optim.base_batch_size=4",
                              "runtime.num_threads=1", "model.temporal=tsm", *overrides])


def config_file(tmp_path: Path, config: TrainConfig, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config.to_dict()))
    return path



def torchrun(*args, check: bool = True) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node 2`` on 127.0.0.1 (a free port), this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), *map(str, args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO)
    if check and done.returncode != 0:
        raise AssertionError(f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return done


@pytest.mark.slow
def test_two_ranks_train_identical_replicas_only_rank_zero_writes_and_a_killed_run_resumes_exactly(odd_root, tmp_path):
    config = ddp_config(odd_root)  # world_size 1 in the file: the process group's size is recorded
    path = config_file(tmp_path, config)
    straight, weights = tmp_path / "straight", tmp_path / "weights"
    weights.mkdir()
    torchrun(SCRIPT, "train", path, straight, weights)
    weights0, weights1 = (torch.load(weights / f"rank{r}.pt", weights_only=True) for r in (0, 1))

    # replicas (parameters and BatchNorm buffers) end equal
    assert weights0.keys() == weights1.keys()
    for key in weights0:
        torch.testing.assert_close(weights0[key], weights1[key], rtol=0, atol=0, msg=key)
    # only rank 0 wrote (every rank was given the same folder)
    assert {p.name for p in straight.iterdir()} == {"config.yaml", "checkpoints", "scores", "metrics.jsonl",
                                                     "result.json"}
    lines = [json.loads(x) for x in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1.0, 2.0]
    assert yaml.safe_load((straight / "config.yaml").read_text())["runtime"]["world_size"] == 2
    # the global batch (2 per rank x 2 ranks) scales the lr: 0.01 * 4 / 4
    ran = ddp_config(odd_root, "runtime.world_size=2")
    assert scaled_lr(ran) == pytest.approx(0.01) == 2 * scaled_lr(ran, world_size=1)
    for m in lines:
        assert m["lr"] == pytest.approx(0.01 * lr_factor(int(m["epoch"]) - 1, epochs=2, warmup_epochs=1,
                                                         warmup_start_factor=0.1))
    checkpoint = load_checkpoint(straight / "checkpoints" / "last.pt")
    assert checkpoint["world_size"] == 2 and len(checkpoint["rng_ranks"]) == 2
    assert checkpoint["step"] == 2 * 2  # 5 videos padded to 3 per rank, batch 2: 2 steps an epoch
    for key in weights0:
        torch.testing.assert_close(checkpoint["model"][key], weights0[key], rtol=0, atol=0, msg=key)

    # validation over the sharded 3 videos = one process evaluating the checkpoint over all of them
    scores = list(csv.DictReader((straight / "scores" / "val_epoch2.csv").open()))
    assert len(scores) == 3 and len({row["video_id"] for row in scores}) == 3
    single = evaluate_checkpoint(ran, straight / "checkpoints" / "last.pt", views="1x1", out_dir=tmp_path / "single")
    assert single["videos"] == 3
    for key in ("top1", "top5", "mean_class_acc"):
        assert single[f"test_{key}"] == lines[-1][f"val_{key}"], key
    assert single["test_loss"] == pytest.approx(lines[-1]["val_loss"], abs=1e-6)
    again = list(csv.DictReader((tmp_path / "single" / "scores" / "test_1x1.csv").open()))
    assert [r["video_id"] for r in again] == [r["video_id"] for r in scores]
    for a, b in zip(again, scores):
        for k in ("score_0", "score_1"):
            assert float(a[k]) == pytest.approx(float(b[k]), abs=1e-5)

    # a run whose rank 0 is SIGKILLed right after epoch 1, resumed through the documented entry point
    # (torchrun -m experiments.torchrun_train --resume), ends where the uninterrupted run ended
    killed = tmp_path / "killed"
    assert torchrun(SCRIPT, "train", path, killed, weights, 1, check=False).returncode != 0
    assert load_checkpoint(killed / "checkpoints" / "last.pt")["epoch"] == 1
    done = torchrun("-m", "experiments.torchrun_train", path, "--out", killed, "--resume")
    assert "final val top-1" in done.stdout
    final = load_checkpoint(killed / "checkpoints" / "last.pt")
    assert final["epoch"] == 2 and final["step"] == checkpoint["step"]
    for key in weights0:
        torch.testing.assert_close(final["model"][key], weights0[key], rtol=0, atol=1e-6, msg=key)
    resumed_lines = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in resumed_lines] == [1.0, 2.0]  # each epoch written once
    assert resumed_lines[-1]["val_top1"] == lines[-1]["val_top1"]
    assert resumed_lines[-1]["train_loss"] == pytest.approx(lines[-1]["train_loss"])

    # a checkpoint of 2 processes is not resumed by 1
    from gsf.engine import train

    with pytest.raises(GSFCheckpointError, match="trained by 2 process"):
        train(ddp_config(odd_root), killed, resume=True)


BATCH, VIEWS = 3, "2x1"


@pytest.fixture(scope="module")
def two_ranks(odd_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_ranks")
    torchrun(SCRIPT, "step_and_predict", config_file(folder, ddp_config(odd_root)), BATCH, VIEWS, folder)
    return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.mark.slow
def test_all_reduced_gradient_of_two_ranks_equals_the_full_batch_gradient(two_ranks):
    from gsf.engine.trainer import loss_fn

    model, video, labels = fixed_model_and_batch(2 * BATCH)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    loss_fn(model(video), labels).backward()
    full = {n: p.grad.clone() for n, p in model.named_parameters()}
    optimizer.step()
    for rank in two_ranks:
        for name, p in model.named_parameters():
            torch.testing.assert_close(rank["grads"][name], full[name], rtol=1e-4, atol=1e-6, msg=name)
            torch.testing.assert_close(rank["params"][name], p.detach(), rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
def test_sharded_evaluation_of_an_odd_number_of_videos_equals_one_process(odd_root, two_ranks):
    from gsf.engine.loaders import build_split, eval_loader

    config = ddp_config(odd_root)
    dataset = build_split(config, "val", train=False, views=VIEWS)
    single = predict_views(seeded_model(), eval_loader(dataset, config, 2), num_views=2)
    for rank in two_ranks:  # every rank holds the whole set's prediction
        sharded = rank["prediction"]
        assert sharded["index"].tolist() == single["index"].tolist() == [0, 1, 2]
        assert sharded["video_id"] == single["video_id"]
        assert sharded["label"].tolist() == single["label"].tolist()
        assert sharded["views_seen"] == single["views_seen"] == 6
        torch.testing.assert_close(sharded["logits"], single["logits"], rtol=1e-5, atol=1e-6)


def test_merging_shards_refuses_a_video_predicted_twice_or_missing():
    def part(indices):
        return {"index": torch.tensor(indices), "video_id": [f"v{i}" for i in indices],
                "label": torch.zeros(len(indices), dtype=torch.int64), "logits": torch.zeros(len(indices), 2),
                "views_seen": len(indices), "skipped": []}

    merged = merge_predictions([part([0, 2]), part([1])], num_videos=3)
    assert merged["video_id"] == ["v0", "v1", "v2"] and merged["views_seen"] == 3
    with pytest.raises(GSFDataError, match=r"predicted twice"):
        merge_predictions([part([0, 2]), part([2])], num_videos=3)
    with pytest.raises(GSFDataError, match=r"2 of 3 videos"):
        merge_predictions([part([0]), part([1])], num_videos=3)


def test_no_rank_is_started_by_the_engine_and_its_entry_points_check_their_input(odd_root, capsys, monkeypatch):
    from experiments.torchrun_train import main as torchrun_main
    from gsf.engine import train

    with pytest.raises(GSFConfigError, match=r"runtime.world_size=0 must be >= 1"):
        ddp_config(odd_root, "runtime.world_size=0")
    with pytest.raises(GSFConfigError, match=r"not in a process group: start the ranks with gsf train --nproc 2"):
        train(ddp_config(odd_root, "runtime.world_size=2"), "unused")
    from gsf.cli import main

    assert main(["train", "--set", f"data.root={odd_root}", "--out", "unused", "--nproc", "0", "x.yaml"]) == 2
    assert "--nproc 0" in capsys.readouterr().err
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert torchrun_main(["x.yaml", "--out", "unused"]) == 2
    assert "not started by torchrun (RANK" in capsys.readouterr().err


def test_sync_bn_converts_every_batch_norm_and_needs_cuda(odd_root):
    from torch import nn

    from gsf.engine.distributed import with_sync_bn

    model = seeded_model()
    params = {n: p for n, p in model.named_parameters()}
    batch_norms = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    converted = with_sync_bn(model)
    assert batch_norms and all(isinstance(converted.get_submodule(n), nn.SyncBatchNorm) for n in batch_norms)
    assert not any(type(m) is nn.BatchNorm2d for m in converted.modules())
    # the same parameter objects: the optimizer and the checkpoints are unchanged
    assert all(p is params[n] for n, p in converted.named_parameters())
    assert ddp_config(odd_root).runtime.sync_bn is False  # off by default, as the release
    with pytest.raises(GSFConfigError, match=r"runtime.sync_bn=true needs CUDA"):
        ddp_config(odd_root, "runtime.world_size=2", "runtime.sync_bn=true")


@pytest.mark.slow
def test_gsf_train_nproc_keeps_a_rank_whose_batch_was_all_unreadable_in_lock_step(odd_root, tmp_path, capsys,
                                                                                   monkeypatch):
    import yaml

    from gsf.cli import main

    # What an earlier test of the session could leave to this in-process command: MLFLOW_TRACKING_URI (an
    # MLflow call of an earlier test once left it, and --nproc refused to start: the conftest removes it), a
    # RAY_ADDRESS (the local Ray would join that cluster) or a connected Ray (the run would go to it).
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    ray = sys.modules.get("ray")
    assert ray is None or not ray.is_initialized(), "an earlier test left this process connected to a Ray"
    root = tmp_path / "data"
    shutil.copytree(odd_root, root)
    bad = json.loads((root / "train.json").read_text())[0]["id"]
    (root / "20bn-something-something-v2" / f"{bad}.webm").write_bytes(b"not a video")
    config = ddp_config(root, "data.batch_size=1", "data.skip_bad_samples=true", "optim.epochs=1",
                        "optim.warmup_epochs=0")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config.to_dict()))
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "run"), "--nproc", "2"]) == 0
    assert "final val top-1" in capsys.readouterr().out
    # 5 videos padded to 3 per rank, one step per clip; the unreadable one is skipped (and counted) while
    # its rank runs a zero-weighted stand-in, so both ranks take every step
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["train_skipped"] >= 1
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert checkpoint["step"] == 3 and checkpoint["config"]["runtime"]["world_size"] == 2
