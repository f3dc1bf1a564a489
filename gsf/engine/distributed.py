"""Data parallelism inside one run (torch DDP): this process's place in the group, the few collectives
the engine needs, and :func:`run_ranks`, which runs a function in N local processes (the trainer's
:func:`gsf.engine.trainer.launch_local` trains one configuration that way). It imports nothing of the
engine but the errors, so every engine module can import it.

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
  ``result.json`` and calls the callbacks; the other ranks stay in lock-step through the collectives.
  A checkpoint carries every rank's RNG state, so resuming (every rank loads it) is exact.
- **devices**: on CUDA each rank uses its current device (``launch_local`` binds rank r to ``cuda:r``);
  the backend is nccl there and gloo on CPU. BatchNorm normalises with each rank's own batch (no
  SyncBatchNorm); the running statistics are rank 0's (sent to every rank after each epoch).

:func:`run_ranks` (and so ``launch_local``) runs rank 0 in the calling process, so callbacks (the sweep's
Tune and MLflow reporting) work unchanged, and spawns ranks 1..N-1. An error in any rank ends every rank
and is raised in the caller: rank 0's own error as it is, another rank's as a
:class:`gsf.errors.RankFailedError` naming the rank.
"""

from __future__ import annotations

import logging
import pickle
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from gsf.errors import RankFailedError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 1800.0
_READY = "gsf/ready/{}"


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


def barrier(device: torch.device) -> None:
    if device.type == "cuda":
        dist.barrier(device_ids=[device.index])
    else:
        dist.barrier()


# --- running N ranks on this machine -----------------------------------------------------------------

@dataclass
class _Report:
    """What a spawned rank sends back: its return value, or its error."""

    rank: int
    ok: bool
    value: Any = None
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    when: float = 0.0
    collective: bool = False  # the error was a failed collective (a symptom of another rank's failure)


def run_ranks(worker: Callable[..., Any], world_size: int, *, args: tuple = (), main: Callable[[], Any] | None = None,
              backend: str = "gloo", device_type: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Any]:
    """Run ``worker(rank, world_size, *args)`` in a process group of ``world_size`` ranks on this machine
    and return every rank's return value, in rank order.

    Rank 0 is this process (it runs ``main()`` instead when given); ranks 1..N-1 are spawned (``worker``
    and ``args`` must pickle, ``worker`` be importable). The group meets on a free port of 127.0.0.1. On
    CUDA, rank r uses ``cuda:r``. If any rank fails, the others are ended and the error is raised here.
    """
    import torch.multiprocessing as mp

    timeout = timedelta(seconds=timeout_s)
    store = dist.TCPStore("127.0.0.1", 0, world_size, is_master=True, timeout=timeout, wait_for_workers=False)
    context = mp.get_context("spawn")
    ranks: dict[int, _Spawned] = {}
    try:
        for rank in range(1, world_size):
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=_rank_entry, name=f"gsf-rank{rank}",
                                      args=(rank, world_size, store.port, backend, device_type, timeout_s, worker,
                                            args, writer))
            process.start()
            writer.close()  # the rank holds the only writer: its exit ends the pipe
            ranks[rank] = _Spawned(process, reader)
        _wait_until_ready(store, ranks, timeout_s)
        if device_type == "cuda":
            torch.cuda.set_device(0)
        dist.init_process_group(backend, store=store, rank=0, world_size=world_size, timeout=timeout)
        try:
            first = main() if main is not None else worker(0, world_size, *args)
        finally:
            dist.destroy_process_group()
    except RankFailedError:  # a rank failed to start: the others still wait for it
        _end(ranks, grace_s=0.0)
        raise
    except BaseException as err:
        failed_at = time.time()
        # Rank 0 has left the group, so the other ranks' collectives fail and they report.
        received = _collect(ranks, deadline=time.monotonic() + 15.0)
        _end(ranks, grace_s=1.0)
        culprit = _culprit(received, own_error=err, failed_at=failed_at)
        if culprit is None:
            raise
        raise _as_error(culprit, world_size) from err
    received = _collect(ranks, deadline=time.monotonic() + timeout_s)
    _end(ranks, grace_s=5.0)
    culprit = _culprit(received, own_error=None, failed_at=time.time())
    if culprit is not None:
        raise _as_error(culprit, world_size)
    return [first, *(received[rank].value for rank in sorted(ranks))]


@dataclass
class _Spawned:
    process: Any
    reader: Any  # the read end of the pipe the rank reports through


def _rank_entry(rank: int, world_size: int, port: int, backend: str, device_type: str, timeout_s: float,
                worker: Callable[..., Any], args: tuple, writer) -> None:
    """Body of a spawned rank: join the group, run ``worker``, report its result or error."""
    code = 0
    try:
        if device_type == "cuda":
            torch.cuda.set_device(rank)
        timeout = timedelta(seconds=timeout_s)
        store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False, timeout=timeout)
        store.set(_READY.format(rank), "1")
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
        report = _Report(rank, ok=True, value=worker(rank, world_size, *args))
    except BaseException as err:  # every failure goes to rank 0, which raises it
        code = 1
        report = _Report(rank, ok=False, error_type=type(err).__name__, message=str(err),
                         traceback=traceback.format_exc(), when=time.time(), collective=_is_collective_failure(err))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    # Pickled here, by value (the pipe's own pickler would share tensors through this process's memory,
    # gone once it exits).
    try:
        data = pickle.dumps(report)
    except Exception as err:
        code = 1
        data = pickle.dumps(_Report(rank, ok=False, error_type=type(err).__name__, when=time.time(),
                                    message=f"its result could not be sent back: {err}"))
    writer.send_bytes(data)
    writer.close()
    sys.exit(code)


def _is_collective_failure(err: BaseException) -> bool:
    """A failed collective: what a rank sees when another rank died or left (not a root cause)."""
    if isinstance(err, dist.DistError):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and any(
        s in text for s in ("Connection closed by peer", "Connection reset by peer", "gloo", "NCCL"))


def _wait_until_ready(store, ranks: dict[int, _Spawned], timeout_s: float) -> None:
    """Wait until every spawned rank has reached the group's store, or fail fast if one died first."""
    deadline = time.monotonic() + timeout_s
    waiting = set(ranks)
    while waiting:
        waiting = {rank for rank in waiting if not store.check([_READY.format(rank)])}
        dead = sorted(rank for rank in waiting if ranks[rank].process.exitcode is not None)
        if dead:
            received = _collect({dead[0]: ranks[dead[0]]}, deadline=time.monotonic() + 5.0)
            raise _as_error(received[dead[0]], len(ranks) + 1)
        if waiting and time.monotonic() > deadline:
            raise RankFailedError(f"rank {min(waiting)} did not start within {timeout_s:.0f} s", rank=min(waiting))
        if waiting:
            time.sleep(0.05)


def _collect(ranks: dict[int, _Spawned], *, deadline: float) -> dict[int, _Report]:
    """The reports of the spawned ranks, until each has reported or exited (or ``deadline``). A rank that
    exited without a report (killed) gets one describing its exit."""
    from multiprocessing.connection import wait

    received: dict[int, _Report] = {}
    while len(received) < len(ranks) and time.monotonic() < deadline:
        readers = {ranks[rank].reader: rank for rank in ranks if rank not in received}
        for reader in wait(list(readers), timeout=min(1.0, max(0.0, deadline - time.monotonic()))):
            rank = readers[reader]
            try:
                received[rank] = pickle.loads(reader.recv_bytes())
            except (EOFError, OSError):  # the pipe ended without a report: the rank died
                process = ranks[rank].process
                process.join(timeout=5.0)
                received[rank] = _Report(rank, ok=False, when=time.time(), message=_exit_description(process.exitcode))
    return received


def _exit_description(code: int | None) -> str:
    if code is None:
        return "closed its pipe without reporting"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} without reporting an error (out of memory?)"
    return f"exited with code {code} without reporting an error"


def _culprit(received: dict[int, _Report], *, own_error: BaseException | None, failed_at: float) -> _Report | None:
    """The spawned rank whose failure caused the run's failure, or None when rank 0's own error did (or
    nothing failed). A rank's own error comes before a rank killed without a word, which comes before a
    failed collective (the echo of another rank's failure); the earliest of a kind wins."""
    failures = [r for r in received.values() if not r.ok]
    if own_error is not None and not _is_collective_failure(own_error):
        if not any(not r.collective and r.error_type and r.when < failed_at for r in failures):
            return None
    if not failures:
        return None

    def order(report: _Report):
        kind = 0 if (report.error_type and not report.collective) else 1 if not report.error_type else 2
        return kind, report.when

    return min(failures, key=order)


def _as_error(report: _Report, world_size: int) -> RankFailedError:
    if report.error_type:
        log.error("rank %d of %d failed:\n%s", report.rank, world_size, report.traceback.rstrip())
        message = f"rank {report.rank} of {world_size} failed: {report.error_type}: {report.message}"
    else:
        message = f"rank {report.rank} of {world_size} {report.message}"
    return RankFailedError(message, rank=report.rank, error_type=report.error_type or None,
                           remote_traceback=report.traceback)


def _end(ranks: dict[int, _Spawned], *, grace_s: float) -> None:
    """Give the spawned ranks ``grace_s`` to exit, then end the stragglers; close the pipes."""
    deadline = time.monotonic() + grace_s
    for spawned in ranks.values():
        spawned.process.join(timeout=max(0.0, deadline - time.monotonic()))
    for spawned in ranks.values():
        if spawned.process.is_alive():
            spawned.process.terminate()
            spawned.process.join(timeout=5.0)
        if spawned.process.is_alive():
            spawned.process.kill()
            spawned.process.join()
        spawned.reader.close()
