"""Training loop of the release's recipe (docs/recipe.md), resumable exactly.

SGD (momentum 0.9, weight decay 5e-4 on every parameter; ``optim.optimizer: adamw`` for CPU-sized nets), lr
scaled linearly with the global batch (``lr * batch_size * world_size * accumulation_steps / base_batch_size``),
linear warm-up from ``warmup_start_factor`` then cosine to ~0, **stepped per epoch** as the release does
(every iteration of epoch e uses the lr of epoch e; see :func:`lr_factor`), gradient clipping at global norm 20,
mixed precision on CUDA (bf16, or fp16 with a GradScaler), gradient accumulation, optional partial BN. Every
epoch also records the training health of :mod:`gsf.engine.health` (gradient norms, clipped steps, what GSF
routes).

Determinism: the train sampler and the loader workers of epoch e are seeded from ``(seed, e)``; the
global torch/numpy/Python generators (dropout, augmentation in the main process) are saved in every
checkpoint and restored on resume, so training 2 epochs equals training 1, stopping and resuming for 1.

Data parallel (``runtime.world_size`` > 1, or called in every rank of a process group): see
:mod:`gsf.engine.distributed`; ``data.batch_size`` is per process.

``runtime.compile`` (docs/compile.md): the model trains and validates under ``torch.compile``
(:func:`gsf.engine.evaluate.compile_model`; in a process group the model is compiled first and the compiled
module wrapped in DDP, as PyTorch's guide on where to apply ``torch.compile`` advises). Checkpoints hold the
bare model's state dict. Each epoch's metrics add ``compile_seconds``, the time spent compiling during its
training steps and its validation, measured by :class:`CompileClock`; ``clips_per_second`` leaves out the part
spent in the training steps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gsf.engine import distributed
from gsf.engine.callbacks import Callback
from gsf.engine.checkpoint import (
    FORMAT,
    check_compatible,
    code_version_entry,
    load_checkpoint,
    model_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from gsf.engine.config import OPTIMIZERS, TrainConfig, check_config, model_kwargs, parse_views, resolve_device, resolve_precision
from gsf.engine.evaluate import (
    classification_metrics,
    compile_model,
    evaluate_protocols,
    predict_dataset,
    write_scores,
)
from gsf.engine.health import GradientRecord, gated_modules, temporal_module_statistics
from gsf.engine.loaders import autocast_for, build_split, epoch_seed, num_classes_of, seed_everything, train_loader
from gsf.errors import GSFCheckpointError, GSFConfigError, NonFiniteLossError
from gsf.mlflow_schema import CHECKPOINT_PREFIX

log = logging.getLogger(__name__)

# Clips of each epoch's first batch on which the temporal modules' routing is measured (gsf.engine.health).
PROBE_CLIPS = 4


# --- schedule ----------------------------------------------------------------------------------------

def lr_factor(epoch: int, *, epochs: int, warmup_epochs: int, warmup_start_factor: float, schedule: str = "cosine",
              lr_steps: Sequence[int] = ()) -> float:
    """Multiplier of the (scaled) lr during 0-based epoch ``epoch`` (docs/recipe.md).

    Warm-up, ``epoch < W``: ``s + (1 - s) * epoch / W`` (``s = warmup_start_factor``), linear from s to
    just below 1. Then ``cosine``: ``0.5 * (1 + cos(pi * (epoch - W) / (E - W)))``, 1 at epoch W and ~0 at the
    last epoch E - 1 (it would reach 0 at epoch E, which is never trained); or ``step``, as TSM's code base
    steps it for TAM and TIN: ``0.1 ** (number of lr_steps <= epoch)``.
    """
    if epoch < warmup_epochs:
        return warmup_start_factor + (1.0 - warmup_start_factor) * epoch / warmup_epochs
    if schedule == "step":
        return 0.1 ** sum(epoch >= step for step in lr_steps)
    return 0.5 * (1.0 + math.cos(math.pi * (epoch - warmup_epochs) / (epochs - warmup_epochs)))


def parameter_groups(model: nn.Module, *, policy: str, lr: float, weight_decay: float) -> list[dict]:
    """The optimiser's parameter groups (docs/recipe.md).

    ``uniform``: one group, ``lr`` and ``weight_decay`` for every parameter (the GSF release). ``tsm``: the
    policy of TSM's code base, with which TAM and TIN are trained: every ``nn.Linear`` weight at 5 x lr with
    decay (the head's and the temporal modules' own linear layers alike), every ``nn.Linear`` bias at 10 x lr
    and every convolution bias at 2 x lr, both without decay, BatchNorm weights and biases at lr without
    decay, every other parameter (convolution weights) at lr with decay. The first group is always the one at
    ``lr`` with decay, so ``param_groups[0]["lr"]`` is the run's lr. Frozen parameters (partial BN) are left
    out of ``tsm``'s groups.
    """
    if policy == "uniform":  # every parameter, frozen ones too (they get no gradient), as checkpoints hold them
        return [{"params": list(model.parameters()), "lr": lr, "weight_decay": weight_decay}]
    if policy != "tsm":
        raise GSFConfigError(f"optim.param_groups={policy!r} is not one of uniform, tsm")
    # (lr multiplier, decays) -> parameters; the first key is the plain group
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {(1.0, True): [], (5.0, True): [], (10.0, False): [],
                                                             (2.0, False): [], (1.0, False): []}
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if isinstance(module, nn.Linear):
                key = (5.0, True) if name == "weight" else (10.0, False)
            elif isinstance(module, nn.modules.batchnorm._NormBase):
                key = (1.0, False)
            elif isinstance(module, nn.modules.conv._ConvNd) and name == "bias":
                key = (2.0, False)
            else:
                key = (1.0, True)
            groups[key].append(param)
    return [{"params": params, "lr": lr * mult, "weight_decay": weight_decay if decays else 0.0}
            for (mult, decays), params in groups.items() if params or (mult, decays) == (1.0, True)]


def scaled_lr(config: TrainConfig, world_size: int | None = None) -> float:
    """Linear scaling rule for the global batch: ``lr * batch_size * world_size * accumulation_steps /
    base_batch_size`` (``world_size``: processes of the run, default ``runtime.world_size``)."""
    o = config.optim
    world_size = config.runtime.world_size if world_size is None else world_size
    return o.lr * config.data.batch_size * world_size * o.accumulation_steps / o.base_batch_size


def make_optimizer(parameters, *, optimizer: str, lr: float, momentum: float, weight_decay: float):
    """``sgd``: the release's SGD (``momentum``, L2 ``weight_decay`` on every parameter, docs/recipe.md);
    ``adamw``: :class:`torch.optim.AdamW` with decoupled ``weight_decay`` and torch's betas."""
    if optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    raise GSFConfigError(f"optim.optimizer={optimizer!r} is not one of {list(OPTIMIZERS)}")


# --- model pieces ------------------------------------------------------------------------------------

def loss_fn(output, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy; for two heads (EPIC) the sum of the verb and noun losses."""
    if isinstance(output, Mapping):
        return sum(F.cross_entropy(output[name].float(), labels[:, i]) for i, name in enumerate(("verb", "noun")))
    return F.cross_entropy(output.float(), labels)


def correct(output, labels: torch.Tensor) -> torch.Tensor:
    """Bool per clip: top-1 right (both verb and noun for EPIC, i.e. the action)."""
    if isinstance(output, Mapping):
        return (output["verb"].argmax(-1) == labels[:, 0]) & (output["noun"].argmax(-1) == labels[:, 1])
    return output.argmax(-1) == labels


def batch_norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def apply_partial_bn(model: nn.Module) -> None:
    """TSN's partial BN: every BatchNorm but the first keeps its running statistics (eval mode) and its
    affine parameters frozen. Call after ``model.train()``."""
    for bn in batch_norms(model)[1:]:
        bn.eval()
        for p in bn.parameters():
            p.requires_grad_(False)


# --- the run -----------------------------------------------------------------------------------------

# Graphs a compiled run may hold per compiled function: one per (mode, batch shape), train and evaluation
# (dynamic=False), beyond torch's default of 8; reaching it is an error rather than a silent fall back to eager.
RECOMPILE_LIMIT = 64


class _Settings:
    """Global torch settings changed for a run, restored afterwards."""

    def __init__(self, config: TrainConfig):
        self.config = config

    def __enter__(self):
        self.deterministic = torch.are_deterministic_algorithms_enabled()
        self.threads = torch.get_num_threads()
        self.cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        self.dynamo = contextlib.ExitStack()
        r = self.config.runtime
        if r.num_threads is not None:
            torch.set_num_threads(r.num_threads)
        if r.deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        if r.compile is not False:
            self.dynamo.enter_context(torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT,
                                                                 fail_on_recompile_limit_hit=True))
        return self

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.deterministic)
        torch.set_num_threads(self.threads)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = self.cudnn
        self.dynamo.close()
        return False


class CompileClock:
    """Seconds ``torch.compile`` spends compiling while the clock is entered (:attr:`seconds`, summed).

    Dynamo runs callbacks when a compilation starts and ends (the outermost one, when compilations nest);
    they bracket graph capture, AOT autograd and the backend's code generation, and also the backward graph's
    compilation that AOT autograd defers to the first backward. The clock registers a pair on entering and
    removes it on leaving. ``torch._dynamo.callback`` is the hook torch offers for this; it is not part of its
    documented API, so a torch release that changes it shows up in tests/engine/test_compile.py."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: float | None = None

    def _start(self, _args) -> None:
        self._started = time.perf_counter()

    def _end(self, _args) -> None:
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None

    def __enter__(self) -> CompileClock:
        from torch._dynamo.callback import callback_handler

        callback_handler.register_start_callback(self._start)
        callback_handler.register_end_callback(self._end)
        return self

    def __exit__(self, *exc) -> bool:
        from torch._dynamo.callback import callback_handler

        callback_handler.remove_start_callback(self._start)
        callback_handler.remove_end_callback(self._end)
        return False


def train(config: TrainConfig, out_dir: str | Path, resume: bool = False,
          callbacks: Sequence[Callback] = ()) -> dict[str, float]:
    """Train ``config``, writing ``out_dir/config.yaml``, ``checkpoints/last.pt`` (+ ``best.pt``),
    ``scores/val_epoch<N>.csv``, ``metrics.jsonl`` and ``result.json``; return the final metrics.

    ``resume`` continues from ``out_dir/checkpoints/last.pt`` exactly. Without it, an ``out_dir`` that
    already holds a checkpoint is an error (nothing is overwritten by accident).

    Data parallel: called in every rank of an initialised process group, each rank trains its shard and
    only rank 0 writes and calls ``callbacks`` (those with ``every_rank`` set are called in every rank;
    :mod:`gsf.engine.distributed`). Whoever starts the ranks (Ray Train, :mod:`gsf.engine.worker_group`;
    torchrun, :mod:`experiments.torchrun_train`) sets the group up; without one, ``runtime.world_size`` must be 1.
    """
    check_config(config)
    where = distributed.group()
    if not where.active and config.runtime.world_size > 1:
        raise GSFConfigError(
            f"runtime.world_size={config.runtime.world_size} but this process is not in a process group: start the "
            f"ranks with gsf train --nproc {config.runtime.world_size} (Ray Train), torchrun --nproc-per-node "
            f"{config.runtime.world_size} -m experiments.torchrun_train, or a sweep's resources.workers_per_trial")
    if where.active and config.runtime.world_size != where.world_size:
        if config.runtime.world_size != 1:
            raise GSFConfigError(f"runtime.world_size={config.runtime.world_size} but the process group has "
                                 f"{where.world_size} processes")
        # a group launched elsewhere (torchrun): record it
        config = config.copy({"runtime.world_size": where.world_size}, source="process group")
    with _Settings(config):
        return _Run(config, Path(out_dir), list(callbacks), where).run(resume)




class _Run:
    def __init__(self, config: TrainConfig, out_dir: Path, callbacks: list[Callback], where: distributed.Group):
        self.config, self.out_dir, self.where = config, out_dir, where
        self.main = where.is_main
        self.callbacks = callbacks if self.main else [cb for cb in callbacks if getattr(cb, "every_rank", False)]
        self.device_type = resolve_device(config)
        self.device = distributed.local_device(self.device_type)
        self.precision = resolve_precision(config)
        self.last_path = out_dir / "checkpoints" / "last.pt"
        self.best_path = out_dir / "checkpoints" / "best.pt"
        self.compiling = config.runtime.compile is not False
        self.compile_clock = CompileClock()

    def _build(self) -> None:
        from gsf.models import build_model

        c = self.config
        seed = c.runtime.seed
        seed_everything(seed)
        self.train_set = build_split(c, c.data.train_split, train=True)
        self.val_clips, self.val_crops = parse_views(c.data.val_views)
        self.decoded_cache: dict = {}  # data.cache_decoded: validation and test views decode each video once
        self.val_set = build_split(c, c.data.val_split, train=False, views=c.data.val_views,
                                   decoded_cache=self.decoded_cache)
        self.num_classes = num_classes_of(self.train_set)
        self.model = build_model(**model_kwargs(c, num_classes=self.num_classes))
        if c.model.init_from:  # fine-tuning: the head re-initialised when the class count differs
            from gsf.models.registry import backbone_spec
            from gsf.models.weights import init_from_checkpoint

            basic_block = backbone_spec(c.model.backbone).block == "basic"
            init_from_checkpoint(self.model, c.model.init_from, basic_block=basic_block)
        self.model.to(self.device)
        if c.optim.partial_bn:  # freeze before DDP takes the list of parameters it reduces
            apply_partial_bn(self.model)
        if self.where.rank > 0:  # same weights everywhere, but each rank its own dropout and augmentation
            seed_everything(epoch_seed(seed, 0, self.where.rank))
        o = c.optim
        lr = scaled_lr(c, self.where.world_size)
        groups = parameter_groups(self.model, policy=o.param_groups, lr=lr, weight_decay=o.weight_decay)
        self.optimizer = make_optimizer(groups, optimizer=o.optimizer, lr=lr, momentum=o.momentum,
                                        weight_decay=o.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda e: lr_factor(e, epochs=o.epochs, warmup_epochs=o.warmup_epochs,
                                                warmup_start_factor=o.warmup_start_factor, schedule=o.schedule,
                                                lr_steps=o.lr_steps))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.epoch, self.step = 0, 0
        self.best_top1, self.best_epoch = -1.0, 0
        self.probe: torch.Tensor | None = None  # the last epoch's first clips (training health)
        self.last_metrics: dict[str, float] = {}

    def _restore(self) -> None:
        checkpoint = load_checkpoint(self.last_path)  # every rank reads it (weights_only)
        check_compatible(checkpoint, self.config.to_dict()["model"], self.model, path=self.last_path)
        saved_world = int(checkpoint.get("world_size", 1))
        if saved_world != self.where.world_size:
            raise GSFCheckpointError(
                f"{self.last_path} was trained by {saved_world} process(es) and cannot be resumed by "
                f"{self.where.world_size} (the global batch, lr and data order depend on it): resume it with "
                f"runtime.world_size={saved_world} (gsf train --nproc {saved_world})")
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.epoch, self.step = int(checkpoint["epoch"]), int(checkpoint["step"])
        self.best_top1, self.best_epoch = float(checkpoint["best_val_top1"]), int(checkpoint["best_epoch"])
        self.last_metrics = dict(checkpoint.get("metrics") or {})
        per_rank = checkpoint.get("rng_ranks")
        set_rng_state(per_rank[self.where.rank] if per_rank else checkpoint["rng"])
        log.info("resumed %s at epoch %d (step %d)", self.last_path, self.epoch, self.step)

    def _payload(self, metrics: dict, rng_ranks: list | None) -> dict:
        payload = {
            "format": FORMAT, "model": model_state(self.model), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "epoch": self.epoch, "step": self.step, "rng": rng_state(), "best_val_top1": self.best_top1,
            "best_epoch": self.best_epoch, "metrics": metrics, "config": self.config.to_dict(),
            "code_version": code_version_entry(), "world_size": self.where.world_size,
        }
        if rng_ranks is not None:
            payload["rng_ranks"] = rng_ranks
        return payload

    def run(self, resume: bool) -> dict[str, float]:
        with self.compile_clock if self.compiling else contextlib.nullcontext():
            return self._run(resume)

    def _run(self, resume: bool) -> dict[str, float]:
        if not resume and self.last_path.exists():
            raise GSFConfigError(f"{self.out_dir} already holds a run ({self.last_path}); pass --resume to "
                                 "continue it or choose another --out")
        if resume and not self.last_path.exists():
            raise GSFConfigError(f"cannot resume: {self.last_path} does not exist")
        self._build()
        if resume:
            self._restore()
        # DDP wraps the restored model (and checks that every rank holds the same weights).
        if self.where.active and self.config.runtime.sync_bn:
            self.model = distributed.with_sync_bn(self.model)
        # The model trained and validated: compiled (a wrapper, self.model stays eager) when runtime.compile
        # is set, then in DDP in a process group.
        self.compiled = compile_model(self.model, self.config.runtime.compile)
        self.net = distributed.wrap_model(self.compiled, self.device) if self.where.active else self.compiled
        if self.main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.yaml").write_text(self.config.to_yaml(), encoding="utf-8")
        for cb in self.callbacks:
            cb.on_train_start(self.config, self.out_dir, self.epoch + 1)
        epochs = self.config.optim.epochs
        while self.epoch < epochs:
            self.epoch += 1
            compiled_before = self.compile_clock.seconds
            metrics = self._train_epoch()
            if self.epoch % self.config.runtime.eval_every == 0 or self.epoch == epochs:
                metrics.update(self._validate())
            if self.compiling:
                metrics["compile_seconds"] = self.compile_clock.seconds - compiled_before
            self.scheduler.step()
            self._check_finite_weights()
            rng_ranks = distributed.all_gather_objects(rng_state()) if self.where.active else None
            self.last_metrics = metrics
            if self.main:
                save_checkpoint(self._payload(metrics, rng_ranks), self.last_path)
                if metrics.get("best_epoch") == self.epoch:
                    save_checkpoint(self._payload(metrics, rng_ranks), self.best_path)
                with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                    f.write(json.dumps(metrics) + "\n")
                log.info("epoch %d/%d: %s", self.epoch, epochs,
                         ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "epoch"))
            for cb in self.callbacks:
                cb.on_epoch_end(self.epoch, dict(metrics), self.last_path)
        if self.where.active:  # no rank leaves before rank 0 has written and reported the last epoch
            distributed.barrier(self.device)
        result = dict(self.last_metrics)
        result.update(final_val_top1=result.get("val_top1", math.nan), final_val_top5=result.get("val_top5", math.nan),
                      best_val_top1=self.best_top1, best_epoch=float(self.best_epoch))
        if isinstance(self.num_classes, int):
            result["num_classes"] = float(self.num_classes)
        if self.main:
            result.update(self._checkpoint_routing())
        if self.config.data.test_views:  # the best checkpoint at each test protocol: test_<P>_top1 ...
            tested = self.best_path if self.best_path.exists() else self.last_path
            if self.where.active:  # rank 0's file, also on ranks that do not share its folder (Ray Train, nodes)
                tested = distributed.rank_zero_file(tested)
            result.update(evaluate_protocols(self.config, tested, out_dir=self.out_dir,
                                             decoded_cache=self.decoded_cache))
        if self.compiling:  # this process's: a resumed run counts from where it resumed
            result["total_compile_seconds"] = self.compile_clock.seconds
        if self.main:
            (self.out_dir / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        for cb in self.callbacks:
            cb.on_train_end(dict(result))
        return result

    def _train_epoch(self) -> dict[str, float]:
        from tqdm import tqdm

        c, model, net = self.config, self.model, self.net
        net.train()
        if c.optim.partial_bn:
            apply_partial_bn(model)
        params = [p for p in model.parameters() if p.requires_grad]
        loader = train_loader(self.train_set, c, self.epoch, self.where)
        accumulation = c.optim.accumulation_steps
        lr = self.optimizer.param_groups[0]["lr"]
        total_loss, total_correct, clips, skipped = 0.0, 0, 0, 0
        start, compiled_before = time.perf_counter(), self.compile_clock.seconds

        def running_seconds() -> float:  # wall time of the epoch so far, time spent compiling left out
            return time.perf_counter() - start - (self.compile_clock.seconds - compiled_before)
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(loader, total=len(loader), desc=f"epoch {self.epoch}/{c.optim.epochs}", leave=False,
                   disable=not (c.runtime.progress and self.main), dynamic_ncols=True)
        pending = 0
        stand_in = None
        self.gradients = GradientRecord(c.optim.clip_grad_norm)
        probe = None  # a few of the epoch's first clips, for what the temporal modules route
        for i, batch in enumerate(bar):
            skipped += len(batch.get("skipped", []))
            weight = 1.0
            if "video" in batch:
                video = batch["video"].to(self.device, non_blocking=True)
                labels = batch["label"].to(self.device, non_blocking=True)
                if self.where.active:
                    stand_in = (video[:1].clone(), labels[:1].clone())
                if probe is None:
                    probe = video[:PROBE_CLIPS].detach().clone()
            elif not self.where.active:
                continue
            else:  # every rank must run the same passes (DDP reduces in each backward): a clip weighted 0
                video, labels = stand_in if stand_in is not None else self._blank_clip()
                weight = 0.0
            steps_now = pending + 1 == accumulation or i == len(loader) - 1
            # Accumulating micro-batches: DDP reduces the gradients only in the step's last backward.
            sync = net.no_sync() if self.where.active and not steps_now else contextlib.nullcontext()
            with sync:
                with autocast_for(self.device_type, self.precision):
                    output = net(video)
                loss = loss_fn(output, labels)
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(
                        f"loss is {loss.item()} at epoch {self.epoch}, step {self.step + 1} (batch {i + 1} of "
                        f"{len(loader)}, videos {batch.get('video_id', [])[:4]}); stopped. The last good checkpoint "
                        f"is {self.last_path if self.last_path.exists() else 'none (first epoch)'}; "
                        "try a lower optim.lr or runtime.precision=fp32")
                self.scaler.scale(loss * (weight / accumulation)).backward()
            pending += 1
            if weight:
                n = int(labels.shape[0])
                total_loss += loss.item() * n
                total_correct += int(correct(output, labels).sum())
                clips += n
            if steps_now:
                self._optimizer_step(params, batch_number=i + 1)
                pending = 0
            if clips:
                bar.set_postfix(loss=f"{total_loss / clips:.4f}", lr=f"{lr:.3g}",
                                clips_s=f"{clips / running_seconds():.1f}")
        bar.close()
        if self.where.active:
            distributed.broadcast_buffers(model)
            total_loss, total_correct, clips, skipped = distributed.all_sum(
                [total_loss, total_correct, clips, skipped], self.device)
            total_correct, clips, skipped = int(total_correct), int(clips), int(skipped)
        if clips == 0:
            raise GSFConfigError(f"epoch {self.epoch}: no training clip was loaded ({skipped} skipped)")
        if skipped:
            log.warning("epoch %d: skipped %d bad samples", self.epoch, skipped)
        # Throughput of the epoch's training steps (data loading included), without the time spent compiling
        # (a compiled run's first step, or a step whose batch shape is new: CompileClock).
        metrics = {"epoch": float(self.epoch), "train_loss": total_loss / clips, "train_top1": total_correct / clips,
                   "lr": lr, "clips_per_second": clips / running_seconds(), "train_skipped": float(skipped)}
        metrics.update(self.gradients.metrics())
        if probe is not None and self.main:
            self.probe = probe
            with autocast_for(self.device_type, self.precision):
                metrics.update(temporal_module_statistics(model, probe))
        return metrics

    def _checkpoint_routing(self) -> dict[str, float]:
        """What the GSF / GSM modules route at the best checkpoint (the last one without validation), on the
        last epoch's probe clips: ``ckpt_gate_abs/<stage>`` ... (:mod:`gsf.engine.health`)."""
        path = self.best_path if self.best_path.exists() else self.last_path
        if self.probe is None or not gated_modules(self.model) or not path.exists():
            return {}
        import copy

        model = copy.deepcopy(self.model)
        model.load_state_dict(load_checkpoint(path)["model"])
        with autocast_for(self.device_type, self.precision):
            stats = temporal_module_statistics(model, self.probe)
        return {CHECKPOINT_PREFIX + key: value for key, value in stats.items()}

    def _blank_clip(self) -> tuple[torch.Tensor, torch.Tensor]:
        """An all-zero clip and label, for a rank whose first batch was all unreadable samples."""
        d = self.config.data
        video = torch.zeros(1, d.num_frames, 3, d.input_size, d.input_size, device=self.device)
        two_heads = isinstance(self.num_classes, dict)
        return video, torch.zeros((1, 2) if two_heads else (1,), dtype=torch.int64, device=self.device)

    def _optimizer_step(self, params: list[nn.Parameter], *, batch_number: int) -> None:
        clip = self.config.optim.clip_grad_norm
        # The norm before clipping is always measured (training health); without clipping it is only read.
        self.scaler.unscale_(self.optimizer)
        if clip is None:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, clip)
        if torch.isfinite(norm):
            self.gradients.add(norm.item())
        if clip is not None:
            if not torch.isfinite(norm) and not self.scaler.is_enabled():
                raise NonFiniteLossError(
                    f"gradient norm is {norm.item()} at epoch {self.epoch}, step {self.step + 1} (batch "
                    f"{batch_number}); stopped. The last good checkpoint is "
                    f"{self.last_path if self.last_path.exists() else 'none (first epoch)'}")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def _check_finite_weights(self) -> None:
        bad = [name for name, p in self.model.state_dict().items() if p.is_floating_point() and not torch.isfinite(p).all()]
        if bad:
            raise NonFiniteLossError(f"weights became NaN/inf during epoch {self.epoch} ({', '.join(bad[:3])}...); "
                                     f"stopped without saving; the last good checkpoint is {self.last_path}")

    def _validate(self) -> dict[str, float]:
        # Sharded over the ranks and gathered: every rank gets the whole set's prediction.
        prediction = predict_dataset(self.compiled, self.val_set, self.config, num_views=self.val_clips * self.val_crops,
                                     device=self.device, precision=self.precision)
        if self.main:
            write_scores(self.out_dir / "scores" / f"val_epoch{self.epoch}.csv", prediction)
        metrics = {f"val_{k}": v for k, v in classification_metrics(prediction["logits"], prediction["label"]).items()}
        if metrics["val_top1"] > self.best_top1:
            self.best_top1, self.best_epoch = metrics["val_top1"], self.epoch
        metrics.update(best_val_top1=self.best_top1, best_epoch=float(self.best_epoch))
        return metrics
