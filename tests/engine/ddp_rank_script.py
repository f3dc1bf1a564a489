"""Run by torchrun in every rank of the DDP tests (tests/engine/test_distributed.py)::

    torchrun --nproc-per-node 2 ddp_rank_script.py train CONFIG OUT WEIGHTS_DIR [KILL_AFTER_EPOCH]
    torchrun --nproc-per-node 2 ddp_rank_script.py step_and_predict CONFIG BATCH VIEWS RESULT_DIR

``train``: :func:`gsf.engine.train` in the group torchrun set up; each rank saves its final weights to
``WEIGHTS_DIR/rank<r>.pt``; with ``KILL_AFTER_EPOCH`` rank 0 SIGKILLs itself right after that epoch's
checkpoint (a killed run). ``step_and_predict``: one SGD step of a DDP-wrapped model on this rank's half of
a fixed batch (gradients after the all-reduce, parameters after the step) and the sharded prediction of the
validation set, saved to ``RESULT_DIR/rank<r>.pt``.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from gsf.engine import Callback, distributed
from gsf.engine.config import TrainConfig, load_config


class KillAfter(Callback):
    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, epoch, metrics, checkpoint_path):
        if epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def fixed_model_and_batch(size: int):
    """A TSM model with BatchNorm in eval mode and no dropout (nothing depends on the batch), and a batch."""
    from gsf.models import build_model

    torch.manual_seed(0)
    model = build_model(backbone="resnet_tiny", temporal="tsm", num_classes=3, dropout=0.0).eval()
    generator = torch.Generator().manual_seed(1)
    video = torch.randn(size, 4, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 3, (size,), generator=generator)
    return model, video, labels


def seeded_model():
    from gsf.models import build_model

    torch.manual_seed(3)
    return build_model(backbone="resnet_tiny", temporal="tsm", num_classes=2)


def train_rank(config_path: str, out: str, weights_dir: str, kill_after: int | None) -> None:
    from gsf.engine import trainer

    runs = []
    original = trainer._Run.run

    def keep(self, resume):
        runs.append(self)
        return original(self, resume)

    trainer._Run.run = keep
    callbacks = [KillAfter(kill_after)] if kill_after else []
    trainer.train(load_config(config_path), Path(out), callbacks=callbacks)
    rank = dist.get_rank()
    torch.save({k: v.detach().clone() for k, v in runs[0].model.state_dict().items()},
               Path(weights_dir) / f"rank{rank}.pt")


def step_and_predict(config_path: str, batch: int, views: str, result_dir: str) -> None:
    from gsf.engine.evaluate import predict_dataset
    from gsf.engine.loaders import build_split
    from gsf.engine.trainer import loss_fn

    torch.set_num_threads(1)
    rank = dist.get_rank()
    model, video, labels = fixed_model_and_batch(2 * batch)
    net = distributed.wrap_model(model, torch.device("cpu"))
    part = slice(rank * batch, (rank + 1) * batch)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    loss_fn(net(video[part]), labels[part]).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    optimizer.step()
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = TrainConfig.from_dict(load_config(config_path).to_dict())
    dataset = build_split(config, "val", train=False, views=views)
    clips, crops = (int(x) for x in views.split("x"))
    prediction = predict_dataset(seeded_model(), dataset, config, num_views=clips * crops, device=torch.device("cpu"),
                                 precision="fp32")
    torch.save({"grads": grads, "params": params, "prediction": prediction}, Path(result_dir) / f"rank{rank}.pt")


def main(argv: list[str]) -> None:
    distributed.init_from_torchrun("cpu", timeout_s=120)
    try:
        if argv[0] == "train":
            train_rank(argv[1], argv[2], argv[3], int(argv[4]) if len(argv) > 4 else None)
        else:
            step_and_predict(argv[1], int(argv[2]), argv[3], argv[4])
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
