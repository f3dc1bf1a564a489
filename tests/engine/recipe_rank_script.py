"""Run by torchrun in every rank of the data-parallel recipe tests (tests/engine/test_recipe.py, test_cuda.py)::

    torchrun --nproc-per-node 2 recipe_rank_script.py accumulate DEVICE RESULT_DIR CONFIG [CONFIG ...]
    torchrun --nproc-per-node 2 recipe_rank_script.py train DEVICE RESULT_DIR CONFIG

``accumulate``: trains each configuration (into ``RESULT_DIR/run<i>``) with every BatchNorm in eval mode (so a
clip's gradient does not depend on the other clips of its batch) and records, per optimizer step, the
gradients handed to the optimizer, and how many backward passes ran inside ``DistributedDataParallel.no_sync``.
``train``: trains the configuration into ``RESULT_DIR/run`` and records the final weights and the kinds of
BatchNorm the network normalised with during training. Each rank saves ``RESULT_DIR/rank<r>.pt``.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import gsf.models
from gsf.engine import distributed, trainer
from gsf.engine.config import load_config

BUILD_MODEL, MAKE_OPTIMIZER, LOSS_FN = gsf.models.build_model, trainer.make_optimizer, trainer.loss_fn


def record_steps(steps: list, models: list) -> None:
    """Every optimizer step's gradients (by parameter name) into ``steps``; the run's model into ``models``."""

    def build_model(**kwargs):
        models.append(BUILD_MODEL(**kwargs))
        return models[-1]

    def before_step(optimizer, args, kwargs):
        steps.append({n: p.grad.detach().cpu().clone() for n, p in models[-1].named_parameters()
                      if p.grad is not None})

    def make_optimizer(parameters, **kwargs):
        optimizer = MAKE_OPTIMIZER(parameters, **kwargs)
        optimizer.register_step_pre_hook(before_step)
        return optimizer

    gsf.models.build_model = build_model
    trainer.make_optimizer = make_optimizer


def accumulate(device: str, result_dir: Path, config_paths: list[str]) -> dict:
    def eval_batch_norms(model):
        for bn in trainer.batch_norms(model):
            bn.eval()

    trainer.apply_partial_bn = eval_batch_norms
    inside = {"no_sync": False, "backward_in_no_sync": 0}
    real_no_sync = DistributedDataParallel.no_sync

    @contextlib.contextmanager
    def counting_no_sync(self):
        with real_no_sync(self):
            inside["no_sync"] = True
            try:
                yield
            finally:
                inside["no_sync"] = False

    DistributedDataParallel.no_sync = counting_no_sync
    def loss(output, labels):
        value = LOSS_FN(output, labels)
        inside["backward_in_no_sync"] += int(inside["no_sync"])
        return value

    trainer.loss_fn = loss
    runs = []
    for i, path in enumerate(config_paths):
        steps, models = [], []
        record_steps(steps, models)
        inside["backward_in_no_sync"] = 0
        trainer.train(load_config(path), result_dir / f"run{i}")
        runs.append({"steps": steps, "backward_in_no_sync": inside["backward_in_no_sync"]})
    return {"runs": runs}


def train(device: str, result_dir: Path, config_path: str) -> dict:
    steps, models = [], []
    record_steps(steps, models)
    kinds = set()

    def loss(output, labels):
        kinds.update(type(m).__name__ for m in models[-1].modules()
                     if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training)
        return LOSS_FN(output, labels)

    trainer.loss_fn = loss
    trainer.train(load_config(config_path), result_dir / "run")
    return {"weights": {k: v.detach().cpu().clone() for k, v in models[-1].state_dict().items()},
            "training_batch_norms": sorted(kinds), "steps": len(steps), "backend": dist.get_backend()}


def main(argv: list[str]) -> None:
    mode, device, result_dir = argv[0], argv[1], Path(argv[2])
    distributed.init_from_torchrun(device, timeout_s=120)
    try:
        if mode == "accumulate":
            result = accumulate(device, result_dir, argv[3:])
        else:
            result = train(device, result_dir, argv[3])
        torch.save(result, result_dir / f"rank{dist.get_rank()}.pt")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
