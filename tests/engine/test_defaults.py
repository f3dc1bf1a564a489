"""The shipped defaults that the tiny test configuration turns off: validation every ``runtime.eval_every`` > 1
epochs (which checkpoint can be best, what the unvalidated epochs report) and ``data.num_workers`` > 0 loader
workers (exact resume with workers, each worker's seeds)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, get_worker_info

from gsf.engine import Callback, train
from gsf.engine.checkpoint import load_checkpoint
from gsf.engine.config import TrainConfig
from gsf.engine.distributed import Group
from gsf.engine.loaders import train_loader

QUICK = ("data.test_views=", "runtime.num_threads=1")


def test_the_shipped_defaults_validate_every_few_epochs_and_load_with_workers():
    defaults = TrainConfig()
    assert defaults.runtime.eval_every > 1 and defaults.data.num_workers > 0


class BestCheckpointAtEachEpoch(Callback):
    def __init__(self):
        self.seen = []  # (epoch, metrics, epoch of best.pt or None)

    def on_epoch_end(self, epoch, metrics, checkpoint_path):
        best = checkpoint_path.with_name("best.pt")
        self.seen.append((epoch, metrics, load_checkpoint(best)["epoch"] if best.exists() else None))


def test_with_eval_every_2_only_validated_epochs_can_be_best_and_the_last_epoch_is_always_validated(tiny_config,
                                                                                                  tmp_path):
    callback = BestCheckpointAtEachEpoch()
    result = train(tiny_config(*QUICK, "runtime.eval_every=2", "optim.epochs=3"), tmp_path, callbacks=[callback])

    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [int(m["epoch"]) for m in lines] == [1, 2, 3]
    first, second, third = lines
    assert not {"val_top1", "val_top5", "val_loss", "best_val_top1", "best_epoch"} & set(first)
    assert {"val_top1", "best_val_top1", "best_epoch"} <= set(second) and {"val_top1", "best_val_top1"} <= set(third)
    assert sorted(p.name for p in (tmp_path / "scores").iterdir()) == ["val_epoch2.csv", "val_epoch3.csv"]

    # no best checkpoint before the first validation; then the best of the validated epochs (the first on a tie)
    assert [best for _, _, best in callback.seen][0] is None
    best_epoch = 2 if second["val_top1"] >= third["val_top1"] else 3
    assert callback.seen[1][2] == 2 and callback.seen[2][2] == best_epoch
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["epoch"] == best["best_epoch"] == best_epoch == int(result["best_epoch"])
    assert result["best_val_top1"] == best["best_val_top1"] == max(second["val_top1"], third["val_top1"])
    assert result["final_val_top1"] == third["val_top1"]  # the last epoch was validated


class Interrupt(Exception):
    pass


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, epoch, metrics, checkpoint_path):
        if epoch == 1:
            raise Interrupt


def test_a_run_with_two_loader_workers_resumes_exactly(tiny_config, tmp_path):
    config = tiny_config(*QUICK, "data.num_workers=2", "data.batch_size=2", "data.max_videos=4")
    train(config, tmp_path / "straight")
    with pytest.raises(Interrupt):
        train(config, tmp_path / "resumed", callbacks=[StopAfterFirstEpoch()])
    train(config, tmp_path / "resumed", resume=True)
    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert straight["epoch"] == resumed["epoch"] == 2 and straight["step"] == resumed["step"] == 4
    for key, value in straight["model"].items():
        assert torch.equal(resumed["model"][key], value), key


class WhoLoadsIt(Dataset):
    """Items that say which loader worker made them, its torch seed and its first Python and numpy draws."""

    def __len__(self):
        return 8

    def __getitem__(self, index):
        worker = get_worker_info()
        origin = (worker.id, torch.initial_seed(), random.getrandbits(32), int(np.random.randint(2**31)))
        return {"index": index, "video": torch.zeros(1), "label": torch.tensor(0), "video_id": origin}


def loaded(config, epoch):
    loader = train_loader(WhoLoadsIt(), config, epoch, Group())
    return [(int(i), origin) for batch in loader for i, origin in zip(batch["index"], batch["video_id"])]


def test_each_loader_worker_gets_its_own_seeds_and_the_same_ones_in_every_run(tiny_config):
    config = tiny_config("data.num_workers=2", "data.batch_size=2")
    items = loaded(config, epoch=1)
    assert sorted(i for i, _ in items) == list(range(8))
    seeds = {}
    for _, (worker, seed, _python_draw, _numpy_draw) in items:
        seeds.setdefault(worker, seed)
        assert seeds[worker] == seed  # one seed per worker for the epoch
    assert set(seeds) == {0, 1} and seeds[0] != seeds[1]
    # Python's and numpy's generators in a worker are seeded from its torch seed
    for worker, seed in seeds.items():
        python_draw, numpy_draw = next(origin[2:] for _, origin in items if origin[0] == worker)
        assert python_draw == random.Random(seed % 2**32).getrandbits(32)
        assert numpy_draw == np.random.RandomState(seed % 2**32).randint(2**31)

    assert loaded(tiny_config("data.num_workers=2", "data.batch_size=2"), epoch=1) == items  # another run
    other_epoch = {origin[1] for _, origin in loaded(config, epoch=2)}
    assert not other_epoch & set(seeds.values())
    other_seed = {origin[1] for _, origin in loaded(tiny_config("data.num_workers=2", "data.batch_size=2",
                                                                "runtime.seed=1"), epoch=1)}
    assert not other_seed & set(seeds.values())
