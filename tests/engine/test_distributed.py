"""Data-parallel training (DDP, gloo on CPU, 2 local processes) on a tiny synthetic set with an odd number
of videos: identical replicas, only rank 0 writes, the all-reduced gradient is the full batch's, sharded
evaluation gives one process's numbers, exact resume, and a failing rank is named in the error.

The functions run in the ranks are module-level (spawned ranks import this module)."""

from __future__ import annotations

import csv
import json
import multiprocessing
import shutil
from pathlib import Path

import pytest
import torch

from gsf.engine import Callback
from gsf.engine.checkpoint import load_checkpoint
from gsf.engine.config import TrainConfig, load_config
from gsf.engine.distributed import run_ranks
from gsf.engine.trainer import launch_local
from gsf.errors import RankFailedError
from gsf.engine.evaluate import evaluate_checkpoint, merge_predictions, predict_views
from gsf.engine.trainer import lr_factor, scaled_lr
from gsf.errors import GSFCheckpointError, GSFConfigError, GSFDataError

from .conftest import TINY
from .test_train import Recorder

TIMEOUT_S = 120.0  # every collective; a hang fails the test instead of blocking it


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


# --- functions run in every rank ---------------------------------------------------------------------

class CopyAfter(Callback):
    """Copies the run folder after epoch ``epoch``: the state of a run killed right after that epoch."""

    def __init__(self, epoch: int, to: Path):
        self.epoch, self.to = epoch, to

    def on_epoch_end(self, epoch, metrics, checkpoint_path):
        if epoch == self.epoch:
            shutil.copytree(checkpoint_path.parent.parent, self.to)


def train_and_keep_weights(rank: int, world_size: int, config_dict: dict, base: str):
    """Train with a folder of its own per rank (so any file a rank > 0 wrote would show), rank 0 keeping a
    copy of its folder after epoch 1; return the result and the rank's final weights."""
    from gsf.engine import trainer

    runs = []
    original = trainer._Run.run

    def keep(self, resume):
        runs.append(self)
        return original(self, resume)

    trainer._Run.run = keep
    try:
        result = trainer.train(TrainConfig.from_dict(config_dict), Path(base) / f"rank{rank}",
                               callbacks=[CopyAfter(1, Path(base) / "after_epoch1")])
    finally:
        trainer._Run.run = original
    return result, {k: v.detach().clone() for k, v in runs[0].model.state_dict().items()}


def step_and_predict(rank: int, world_size: int, batch: int, config_dict: dict, views: str):
    """Two checks in one group (starting ranks is the slow part): one SGD step of the DDP-wrapped model on
    this rank's half of a fixed batch (the gradients after DDP's all-reduce and the parameters after the
    step), and the sharded prediction of the validation set."""
    from gsf.engine.distributed import wrap_model
    from gsf.engine.trainer import loss_fn

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, video, labels = fixed_model_and_batch(2 * batch)
        net = wrap_model(model, torch.device("cpu"))
        part = slice(rank * batch, (rank + 1) * batch)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
        loss_fn(net(video[part]), labels[part]).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        optimizer.step()
        params = {n: p.detach().clone() for n, p in model.named_parameters()}
        return {"grads": grads, "params": params, "prediction": predict_sharded(config_dict, views)}
    finally:
        torch.set_num_threads(threads)


def fixed_model_and_batch(size: int):
    """A TSM model with BatchNorm in eval mode and no dropout (nothing depends on the batch), and a batch."""
    from gsf.models import build_model

    torch.manual_seed(0)
    model = build_model(backbone="resnet_tiny", temporal="tsm", num_classes=3, dropout=0.0).eval()
    generator = torch.Generator().manual_seed(1)
    video = torch.randn(size, 4, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 3, (size,), generator=generator)
    return model, video, labels


def predict_sharded(config_dict: dict, views: str):
    from gsf.engine.evaluate import predict_dataset
    from gsf.engine.loaders import build_split

    config = TrainConfig.from_dict(config_dict)
    dataset = build_split(config, "val", train=False, views=views)
    model = seeded_model()
    clips, crops = (int(x) for x in views.split("x"))
    return predict_dataset(model, dataset, config, num_views=clips * crops, device=torch.device("cpu"),
                           precision="fp32")


def seeded_model():
    from gsf.models import build_model

    torch.manual_seed(3)
    return build_model(backbone="resnet_tiny", temporal="tsm", num_classes=2)


def fail_in_rank_one(rank: int, world_size: int, how: str):
    import os

    import torch.distributed as dist

    dist.barrier()
    if rank == 1:
        if how == "raise":
            raise ValueError("boom in rank 1")
        os._exit(3)
    for _ in range(100):  # rank 0 keeps meeting the others, as training does
        dist.all_reduce(torch.ones(1))
    return "unreachable"


def fail_in_rank_zero(rank: int, world_size: int):
    import torch.distributed as dist

    dist.barrier()
    if rank == 0:
        raise KeyError("rank 0's own error")
    dist.barrier()  # left waiting for rank 0
    return rank


# --- tests -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_two_ranks_train_identical_replicas_only_rank_zero_writes_and_resume_is_exact(odd_root, tmp_path):
    config = ddp_config(odd_root, "runtime.world_size=2")
    straight = tmp_path / "straight"
    (result0, weights0), (result1, weights1) = run_ranks(
        train_and_keep_weights, 2, args=(config.to_dict(), str(straight)), timeout_s=TIMEOUT_S)

    # replicas (parameters and BatchNorm buffers) end equal, and every rank returns the same result
    assert weights0.keys() == weights1.keys()
    for key in weights0:
        torch.testing.assert_close(weights0[key], weights1[key], rtol=0, atol=0, msg=key)
    for key in ("train_loss", "train_top1", "val_top1", "val_loss", "final_val_top1", "best_val_top1"):
        assert result0[key] == result1[key], key

    # only rank 0 wrote
    assert not (straight / "rank1").exists()
    run = straight / "rank0"
    assert {p.name for p in straight.iterdir()} == {"rank0", "after_epoch1"}
    assert {p.name for p in run.iterdir()} == {"config.yaml", "checkpoints", "scores", "metrics.jsonl", "result.json"}
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1.0, 2.0]
    # the global batch (2 per rank x 2 ranks) scales the lr: 0.01 * 4 / 4
    assert scaled_lr(config) == pytest.approx(0.01) == 2 * scaled_lr(config, world_size=1)
    for m in lines:
        assert m["lr"] == pytest.approx(0.01 * lr_factor(int(m["epoch"]) - 1, epochs=2, warmup_epochs=1,
                                                         warmup_start_factor=0.1))
    checkpoint = load_checkpoint(run / "checkpoints" / "last.pt")
    assert checkpoint["world_size"] == 2 and len(checkpoint["rng_ranks"]) == 2
    assert checkpoint["step"] == 2 * 2  # 5 videos padded to 3 per rank, batch 2: 2 steps an epoch
    for key in weights0:
        torch.testing.assert_close(checkpoint["model"][key], weights0[key], rtol=0, atol=0, msg=key)

    # validation over the sharded 3 videos = one process evaluating the checkpoint over all of them
    scores = list(csv.DictReader((run / "scores" / "val_epoch2.csv").open()))
    assert len(scores) == 3 and len({row["video_id"] for row in scores}) == 3
    # (the run's own configuration, world_size 2: outside a process group, evaluation is one process)
    single = evaluate_checkpoint(config, run / "checkpoints" / "last.pt", views="1x1", out_dir=tmp_path / "single")
    assert single["videos"] == 3
    for key in ("top1", "top5", "mean_class_acc"):
        assert single[f"test_{key}"] == lines[-1][f"val_{key}"], key
    assert single["test_loss"] == pytest.approx(lines[-1]["val_loss"], abs=1e-6)
    again = list(csv.DictReader((tmp_path / "single" / "scores" / "test_1x1.csv").open()))
    assert [r["video_id"] for r in again] == [r["video_id"] for r in scores]
    for a, b in zip(again, scores):
        for k in ("score_0", "score_1"):
            assert float(a[k]) == pytest.approx(float(b[k]), abs=1e-5)

    # launch_local: callbacks run in this process; the run as it was after epoch 1, resumed, ends where
    # the uninterrupted run ended (every rank reloads the checkpoint, with its own RNG state)
    resumed = straight / "after_epoch1"
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["epoch"] == 1
    second = Recorder()
    result = launch_local(ddp_config(odd_root, "runtime.world_size=2"), resumed, resume=True, callbacks=[second],
                          timeout_s=TIMEOUT_S)
    assert [event[:2] for event in second.events[:2]] == [("start", 2), ("epoch", 2)]
    assert [event[0] for event in second.events] == ["start", "epoch", "end"]
    assert second.events[-1][1]["final_val_top1"] == result["final_val_top1"]
    final = load_checkpoint(resumed / "checkpoints" / "last.pt")
    for key in weights0:
        torch.testing.assert_close(final["model"][key], weights0[key], rtol=0, atol=1e-6, msg=key)
    assert result["val_top1"] == result0["val_top1"] and result["train_loss"] == pytest.approx(result0["train_loss"])

    # a checkpoint of 2 processes is not resumed by 1
    from gsf.engine import train

    shutil.copytree(resumed, tmp_path / "one")
    with pytest.raises(GSFCheckpointError, match="trained by 2 process"):
        train(ddp_config(odd_root), tmp_path / "one", resume=True)


BATCH, VIEWS = 3, "2x1"


@pytest.fixture(scope="module")
def two_ranks(odd_root):
    return run_ranks(step_and_predict, 2, args=(BATCH, ddp_config(odd_root).to_dict(), VIEWS), timeout_s=TIMEOUT_S)


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


@pytest.mark.parametrize(("how", "message"), [
    ("raise", r"rank 1 of 2 failed: ValueError: boom in rank 1"),
    ("exit", r"rank 1 of 2 exited with code 3"),
])
def test_a_failing_rank_is_named_in_the_error(how, message):
    with pytest.raises(RankFailedError, match=message) as info:
        run_ranks(fail_in_rank_one, 2, args=(how,), timeout_s=TIMEOUT_S)
    assert info.value.rank == 1
    if how == "raise":
        assert "boom in rank 1" in info.value.remote_traceback
    assert not multiprocessing.active_children()


def test_rank_zeros_own_error_is_raised_as_it_is_and_the_other_ranks_end():
    with pytest.raises(KeyError, match="rank 0's own error"):
        run_ranks(fail_in_rank_zero, 2, timeout_s=TIMEOUT_S)
    assert not multiprocessing.active_children()


def test_world_size_is_checked_before_any_process_starts(odd_root, capsys):
    with pytest.raises(GSFConfigError, match=r"runtime.world_size=0 must be >= 1"):
        ddp_config(odd_root, "runtime.world_size=0")
    if torch.cuda.is_available() and torch.cuda.device_count() < 2:
        with pytest.raises(GSFConfigError, match=r"runtime.world_size=2 with runtime.device='cuda' needs one GPU"):
            ddp_config(odd_root, "runtime.world_size=2", "runtime.device=cuda")
    with pytest.raises(GSFConfigError, match=r"world_size=0 must be an integer >= 1"):
        launch_local(ddp_config(odd_root), "unused", world_size=0)
    from gsf.cli import main

    assert main(["train", "--set", f"data.root={odd_root}", "--out", "unused", "--nproc", "0", "x.yaml"]) == 2
    assert "--nproc 0" in capsys.readouterr().err


@pytest.mark.slow
def test_gsf_train_nproc_keeps_a_rank_whose_batch_was_all_unreadable_in_lock_step(odd_root, tmp_path, capsys):
    import yaml

    from gsf.cli import main

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
