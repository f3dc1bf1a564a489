"""Data parallelism inside one run (torch DDP): this process's place in the group and the few collectives
the engine needs. It imports nothing of the engine but the errors, so every engine module can import it.
The ranks are started by Ray Train (:mod:`gsf.engine.worker_group`: a sweep's data-parallel trials, ``gsf
train --nproc N``) or by torchrun (:mod:`experiments.torchrun_train`), never by this package.

How :func:`gsf.engine.train` splits a run over the N processes (ranks) of a process group, one device each:

- **training**: a ``DistributedSampler`` gives every rank a disjoint 1/N of the train set, reshuffled each
  epoch from ``(runtime.seed, epoch)`` (``set_epoch``); it repeats a few samples so that every rank runs
  the same number of steps. The model is wrapped in ``DistributedDataParallel``, which averages the
  ranks' gradients: one optimizer step sees the global batch ``data.batch_size x N x
  optim.accumulation_steps``, and that global batch scales the lr against ``optim.base_batch_size``.
  Train loss/top-1 are summed over the ranks (the repeated samples included).
- **evaluation**: rank r predicts videos r, r + N, r + 2N, ... (disjoint shards, no padding), the
  per-video logits are gathered, and every rank computes the metrics over the whole set: the numbers of a
  single process, every video counted once.
- **writing**: only rank 0 writes ``config.yaml``, checkpoints, scores, ``metrics.jsonl`` and
  ``result.json`` and calls the callbacks (but those marked ``every_rank``, e.g. Ray Train's report, a
  barrier every rank must reach); the other ranks stay in lock-step through the collectives. A checkpoint
  carries every rank's RNG state, so resuming (every rank loads it) is exact.
- **devices**: on CUDA each rank uses its current device (set by whoever started it: Ray Train's device, or
  torchrun's ``LOCAL_RANK``); the backend is nccl there and gloo on CPU. BatchNorm normalises with each
  rank's own batch, as the release does; ``runtime.sync_bn`` makes it :class:`torch.nn.SyncBatchNorm`
  (statistics over the global batch; torch runs it on GPUs only). The running statistics are rank 0's
  (sent to every rank after each epoch).
"""


from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from gsf.errors import GSFConfigError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 1800.0
# What torchrun (and any torch elastic launcher) sets in every rank it starts.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


# --- this process in its group -----------------------------------------------------------------------

@dataclass(frozen=True)
class Group:
    """This process's rank and the number of processes (1 and rank 0 without a process group)."""

    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def in_process_group() -> bool:
    """Whether this process belongs to an initialised torch process group (of any size)."""
    return dist.is_available() and dist.is_initialized()


def group() -> Group:
    if in_process_group():
        return Group(dist.get_rank(), dist.get_world_size())
    return Group()


def local_device(device_type: str) -> torch.device:
    """This process's device: the current CUDA device (set per rank by the launcher), or the CPU."""
    if device_type == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(device_type)


def shard(num_items: int, where: Group) -> range:
    """The items rank ``where.rank`` evaluates: r, r + N, r + 2N, ... (disjoint, nothing repeated)."""
    return range(where.rank, num_items, where.world_size)


def backend_for(device_type: str) -> str:
    """The process group's backend: nccl for CUDA ranks, gloo on CPU."""
    return "nccl" if device_type == "cuda" else "gloo"


def with_sync_bn(model: nn.Module) -> nn.Module:
    """``model`` with every BatchNorm a :class:`torch.nn.SyncBatchNorm` (same parameters and buffers, so the
    optimizer and checkpoints are unchanged; statistics over the global batch). Modules that normalise by
    themselves (the GSF fast path's fused gate BN, :mod:`gsf.ops`) keep per-rank statistics."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` (every parameter is used in each forward of this suite's
    models, so unused-parameter search stays off)."""
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[device.index], output_device=device.index)
    return DistributedDataParallel(model)


def broadcast_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) to every rank. DDP sends them at the start of each
    forward, so after the last step of an epoch every rank holds the statistics of its own last batch;
    this makes the replicas equal again before they evaluate and rank 0 saves."""
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def all_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Element-wise sum over the ranks (float64)."""
    total = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def all_gather_objects(obj: Any) -> list[Any]:
    """``obj`` of every rank, in rank order, on every rank (pickled)."""
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def rank_zero_file(path) -> Any:
    """The file rank 0 has at ``path`` (rank 0's choice of file name wins), on every rank: a rank that lacks it
    (another node, or its own folder: only rank 0 writes) gets its bytes through the process group and writes
    them to the same path. Returns this rank's path. For the checkpoint tested once after training."""
    from pathlib import Path

    path = Path(path)
    name = [path.name if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(name, src=0)
    target = path.with_name(name[0])
    missing = not target.exists()
    if any(all_gather_objects(missing)):
        payload = [target.read_bytes() if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(payload, src=0)
        if missing:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload[0])
    return target


def barrier(device: torch.device) -> None:
    if device.type == "cuda":
        dist.barrier(device_ids=[device.index])
    else:
        dist.barrier()


def started_by_torchrun() -> bool:
    """Whether this process is a rank started by torchrun (its environment names the group)."""
    return all(key in os.environ for key in TORCHRUN_ENV)


def require_torchrun() -> None:
    """Fail, naming what is missing, unless torchrun started this process."""
    if not started_by_torchrun():
        missing = [key for key in TORCHRUN_ENV if key not in os.environ]
        raise GSFConfigError(f"not started by torchrun ({', '.join(missing)} unset): run "
                             "torchrun --nproc-per-node N -m experiments.torchrun_train CONFIG --out DIR")


def init_from_torchrun(device_type: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Group:
    """Join the process group torchrun describes in the environment (``env://``); on CUDA the rank uses
    ``cuda:LOCAL_RANK``. Returns this process's place in the group."""
    require_torchrun()
    if device_type == "cuda":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend_for(device_type), timeout=timedelta(seconds=timeout_s))
    return group()
