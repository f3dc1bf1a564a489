"""The pieces of the training recipe (docs/recipe.md) as the training loop applies them, on the tiny synthetic
set: gradient accumulation, global-norm clipping, the stops on a non-finite loss or gradient, partial BN in
every epoch, fine-tuning from ``model.init_from`` and bf16 autocast on the CPU.

The loop is observed, not re-implemented: :class:`Spy` keeps the model that :func:`gsf.engine.train` builds and
records every optimizer step it takes (the gradients the optimizer is given, the weights before and after)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import gsf.models
from gsf.engine import Callback, train
from gsf.engine import trainer as trainer_module
from gsf.engine.checkpoint import FORMAT, load_checkpoint
from gsf.errors import NonFiniteLossError
from tests.ports import free_port

# One thread: on a shared machine torch's default thread pool mostly waits for the other processes.
QUICK = ("data.test_views=", "runtime.num_threads=1")
# What the spies wrap (a test that spies on two runs must not wrap the first spy)
BUILD_MODEL, MAKE_OPTIMIZER, LOSS_FN = gsf.models.build_model, trainer_module.make_optimizer, trainer_module.loss_fn


class Stop(Exception):
    """Raised by a spy to end a run early."""


class Spy:
    """The models built by the run (``models``, with ``built``: each one's state right after it was built) and
    its optimizer steps (``steps``: per step the lr, the gradients handed to the optimizer and the parameters
    before and after it, by name). ``stop_after_steps``: raise :class:`Stop` after that many steps."""

    def __init__(self, monkeypatch, *, stop_after_steps: int | None = None):
        self.models, self.built, self.steps = [], [], []
        self.stop_after_steps = stop_after_steps
        def build_model(**kwargs):
            model = BUILD_MODEL(**kwargs)
            self.models.append(model)
            self.built.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            return model

        def make_optimizer(parameters, **kwargs):
            optimizer = MAKE_OPTIMIZER(parameters, **kwargs)
            optimizer.register_step_pre_hook(self._before_step)
            optimizer.register_step_post_hook(self._after_step)
            self.made_optimizer()
            return optimizer

        monkeypatch.setattr(gsf.models, "build_model", build_model)
        monkeypatch.setattr(trainer_module, "make_optimizer", make_optimizer)

    def made_optimizer(self) -> None:
        """Called once the run's model is complete (starting weights loaded) and its optimizer made."""

    @property
    def model(self):
        return self.models[0]

    def _before_step(self, optimizer, args, kwargs):
        named = dict(self.model.named_parameters())
        self.steps.append({
            "lr": optimizer.param_groups[0]["lr"],
            "grads": {n: p.grad.detach().clone() for n, p in named.items() if p.grad is not None},
            "before": {n: p.detach().clone() for n, p in named.items()},
        })

    def _after_step(self, optimizer, args, kwargs):
        self.steps[-1]["after"] = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        if self.stop_after_steps is not None and len(self.steps) >= self.stop_after_steps:
            raise Stop


def total_norm(tensors) -> float:
    return math.sqrt(sum(float(t.double().pow(2).sum()) for t in tensors))


def assert_close_dicts(actual: dict, expected: dict, *, rtol: float, what: str) -> None:
    assert actual.keys() == expected.keys(), what
    for key, value in expected.items():
        scale = float(value.abs().max()) or 1.0
        torch.testing.assert_close(actual[key], value, rtol=rtol, atol=rtol * scale, msg=f"{what}: {key}")


# --- gradient accumulation ---------------------------------------------------------------------------

def every_batch_norm_in_eval_mode(monkeypatch):
    """Partial BN that puts every BatchNorm (the first too) in eval mode: the network then computes each clip
    independently of the others in its batch, so a batch of 4 and two of 2 give the same gradients."""

    def eval_batch_norms(model):
        for bn in trainer_module.batch_norms(model):
            bn.eval()

    monkeypatch.setattr(trainer_module, "apply_partial_bn", eval_batch_norms)


def test_two_accumulated_micro_batches_give_the_gradient_and_the_step_of_one_batch_twice_as_large(
        tiny_config, tmp_path, monkeypatch):
    every_batch_norm_in_eval_mode(monkeypatch)
    common = (*QUICK, "data.max_videos=4", "optim.epochs=1", "optim.warmup_epochs=0", "model.dropout=0.0",
              "optim.partial_bn=true", "optim.clip_grad_norm=null")
    runs = {}
    for name, batch, accumulation in (("accumulated", 2, 2), ("one_batch", 4, 1)):
        spy = Spy(monkeypatch)
        forwards = []

        def counting_loss(output, labels, forwards=forwards):
            forwards.append(int(labels.shape[0]))
            return LOSS_FN(output, labels)

        monkeypatch.setattr(trainer_module, "loss_fn", counting_loss)
        train(tiny_config(*common, f"data.batch_size={batch}", f"optim.accumulation_steps={accumulation}"),
              tmp_path / name)
        runs[name] = (spy, forwards)
    accumulated, accumulated_forwards = runs["accumulated"]
    one_batch, one_batch_forwards = runs["one_batch"]
    assert accumulated_forwards == [2, 2] and one_batch_forwards == [4]
    assert len(accumulated.steps) == len(one_batch.steps) == 1  # one optimizer step for the 4 clips
    # the linear scaling rule counts the accumulated micro-batches: the same lr
    assert accumulated.steps[0]["lr"] == pytest.approx(one_batch.steps[0]["lr"], rel=1e-12)
    for key in ("before", "grads", "after"):
        assert_close_dicts(accumulated.steps[0][key], one_batch.steps[0][key], rtol=1e-5, what=key)
    assert total_norm(one_batch.steps[0]["grads"].values()) > 0


RANK_SCRIPT = Path(__file__).with_name("recipe_rank_script.py")
REPO = Path(__file__).resolve().parents[2]


def run_two_ranks(*args, timeout_s: int = 600) -> None:
    """``torchrun --nproc-per-node 2 recipe_rank_script.py ARGS`` on a free local port, this checkout first on the
    path; a failure shows the ranks' output."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(port), str(RANK_SCRIPT), *map(str, args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=REPO)
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"


def config_file(path: Path, config) -> Path:
    path.write_text(yaml.safe_dump(config.to_dict()), encoding="utf-8")
    return path


@pytest.mark.slow
def test_under_ddp_accumulated_micro_batches_skip_the_all_reduce_until_the_step_and_give_the_global_gradient(
        tiny_config, tmp_path):
    # 4 videos over 2 ranks: per rank 2 micro-batches of 1 clip, or 1 batch of 2 clips; one step either way
    common = (*QUICK, "data.max_videos=4", "optim.epochs=1", "optim.warmup_epochs=0", "model.dropout=0.0",
              "optim.partial_bn=true", "optim.clip_grad_norm=null", "optim.base_batch_size=4")
    accumulated = config_file(tmp_path / "accumulated.yaml", tiny_config(
        *common, "data.batch_size=1", "optim.accumulation_steps=2"))
    one_batch = config_file(tmp_path / "one_batch.yaml", tiny_config(*common, "data.batch_size=2"))
    run_two_ranks("accumulate", "cpu", tmp_path, accumulated, one_batch)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False)["runs"] for r in (0, 1)]
    for rank in ranks:
        (accumulated_run, one_batch_run) = rank
        assert len(accumulated_run["steps"]) == len(one_batch_run["steps"]) == 1
        # the first micro-batch's backward ran inside no_sync, the last one (which steps) outside it
        assert accumulated_run["backward_in_no_sync"] == 1 and one_batch_run["backward_in_no_sync"] == 0
        assert_close_dicts(accumulated_run["steps"][0], one_batch_run["steps"][0], rtol=1e-5,
                           what="accumulated vs one batch")
    # after the step's all-reduce both ranks hold the gradient of the global batch
    assert_close_dicts(ranks[1][0]["steps"][0], ranks[0][0]["steps"][0], rtol=1e-6, what="rank 1 vs rank 0")
    assert total_norm(ranks[0][0]["steps"][0].values()) > 0


# --- gradient clipping -------------------------------------------------------------------------------

def test_clipping_scales_the_gradient_to_the_global_norm_and_the_step_applies_the_clipped_gradient(
        tiny_config, tmp_path, monkeypatch):
    clip = 1e-3
    # a large lr, so that the step of a clipped gradient is well above float32 rounding of the weights
    common = (*QUICK, "optim.epochs=1", "optim.warmup_epochs=0", "optim.weight_decay=0.0", "optim.lr=100.0")
    raw = Spy(monkeypatch, stop_after_steps=1)
    with pytest.raises(Stop):
        train(tiny_config(*common, "optim.clip_grad_norm=null"), tmp_path / "raw")
    clipped = Spy(monkeypatch, stop_after_steps=1)
    with pytest.raises(Stop):
        train(tiny_config(*common, f"optim.clip_grad_norm={clip}"), tmp_path / "clipped")

    gradient, step = raw.steps[0]["grads"], clipped.steps[0]
    norm = total_norm(gradient.values())
    assert norm > 100 * clip  # the clip applies
    assert_close_dicts(step["before"], raw.steps[0]["before"], rtol=0, what="weights before the first step")
    assert total_norm(step["grads"].values()) == pytest.approx(clip, rel=1e-4)
    # the same direction, scaled to the norm (torch's factor: clip / (norm + 1e-6))
    expected = {n: g * (clip / (norm + 1e-6)) for n, g in gradient.items()}
    assert_close_dicts(step["grads"], expected, rtol=1e-4, what="clipped gradient")
    # the first SGD step moves each weight by lr times the clipped gradient (no decay, empty momentum), up to
    # the float32 rounding of the weights themselves
    for name, grad in step["grads"].items():
        before, after = step["before"][name].double(), step["after"][name].double()
        expected = step["lr"] * grad.double()
        rounding = 2.0**-22 * float(before.abs().max())
        torch.testing.assert_close(before - after, expected, rtol=1e-4, atol=rounding + 1e-4 * float(expected.abs().max()),
                                   msg=f"step of {name}")


# --- stops on non-finite values ----------------------------------------------------------------------

class InfiniteGradient(torch.autograd.Function):
    """The identity whose backward makes every gradient infinite: a finite loss with a non-finite gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * math.inf


def loss_failing_at_call(monkeypatch, failing_call: int, how: str):
    calls = {"n": 0}

    def loss(output, labels):
        calls["n"] += 1
        value = LOSS_FN(output, labels)
        if calls["n"] != failing_call:
            return value
        return value * math.inf if how == "loss" else InfiniteGradient.apply(value)

    monkeypatch.setattr(trainer_module, "loss_fn", loss)


def test_an_infinite_loss_in_the_first_epoch_stops_naming_epoch_step_and_no_checkpoint(tiny_config, tmp_path,
                                                                                      monkeypatch):
    loss_failing_at_call(monkeypatch, 2, "loss")  # 6 videos, batch 3: epoch 1, batch 2
    with pytest.raises(NonFiniteLossError, match=r"loss is inf at epoch 1, step 2 \(batch 2 of 2.*none \(first epoch\)"):
        train(tiny_config(*QUICK), tmp_path)
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


def test_a_non_finite_gradient_norm_stops_before_the_step_naming_epoch_step_and_the_last_good_checkpoint(
        tiny_config, tmp_path, monkeypatch):
    loss_failing_at_call(monkeypatch, 4, "gradient")  # epoch 2, batch 2
    spy = Spy(monkeypatch)
    with pytest.raises(NonFiniteLossError, match=r"gradient norm is (nan|inf) at epoch 2, step 4 \(batch 2\).*last\.pt"):
        train(tiny_config(*QUICK), tmp_path)
    assert len(spy.steps) == 3  # the optimizer never saw the non-finite gradient
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert checkpoint["epoch"] == 1 and checkpoint["step"] == 2
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


def test_without_clipping_a_non_finite_gradient_still_stops_the_run_before_anything_is_saved(tiny_config, tmp_path,
                                                                                           monkeypatch):
    loss_failing_at_call(monkeypatch, 1, "gradient")
    with pytest.raises(NonFiniteLossError, match=r"epoch 1"):
        train(tiny_config(*QUICK, "optim.clip_grad_norm=null"), tmp_path)
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


# --- partial BN --------------------------------------------------------------------------------------

class EpochCounter(Callback):
    def __init__(self):
        self.finished = 0

    def on_epoch_end(self, epoch, metrics, checkpoint_path):
        self.finished = epoch


def test_partial_bn_holds_in_every_epoch_every_batch_norm_but_the_first_frozen_in_eval_mode(tiny_config, tmp_path,
                                                                                          monkeypatch):
    spy = Spy(monkeypatch)
    counter = EpochCounter()
    modes = []  # (epoch, [bn.training for every BatchNorm]) at each training forward

    def made_optimizer():
        model = spy.model
        norms = trainer_module.batch_norms(model)

        def record(module, args):
            if module.training and torch.is_grad_enabled():
                modes.append((counter.finished + 1, [bn.training for bn in norms]))

        model.register_forward_pre_hook(record)

    spy.made_optimizer = made_optimizer
    train(tiny_config(*QUICK, "optim.partial_bn=true"), tmp_path, callbacks=[counter])

    model = spy.model
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(names) > 2
    assert [epoch for epoch, _ in modes] == [1, 1, 2, 2]
    assert all(training == [True] + [False] * (len(names) - 1) for _, training in modes)
    first, frozen = names[0], names[1:]
    assert all(p.requires_grad for p in model.get_submodule(first).parameters())
    assert not any(p.requires_grad for n in frozen for p in model.get_submodule(n).parameters())

    start, end = spy.built[0], load_checkpoint(tmp_path / "checkpoints" / "last.pt")["model"]
    assert not torch.equal(end[f"{first}.running_mean"], start[f"{first}.running_mean"])
    assert not torch.equal(end[f"{first}.weight"], start[f"{first}.weight"])
    for name in frozen:
        for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            assert torch.equal(end[f"{name}.{key}"], start[f"{name}.{key}"]), f"{name}.{key}"


# --- fine-tuning from a checkpoint -------------------------------------------------------------------

@pytest.mark.parametrize("source_classes", [2, 5])
def test_init_from_in_a_config_starts_from_the_checkpoint_and_keeps_a_fresh_head_for_another_class_count(
        tiny_config, tmp_path, monkeypatch, source_classes):
    torch.manual_seed(11)
    source = gsf.models.build_model(backbone="resnet_tiny", temporal="gsf", num_classes=source_classes)
    torch.save({"format": FORMAT, "model": source.state_dict()}, tmp_path / "source.pt")
    spy = Spy(monkeypatch)
    started = {}

    def made_optimizer():
        started.update({k: v.detach().clone() for k, v in spy.model.state_dict().items()})
        raise Stop

    spy.made_optimizer = made_optimizer
    with pytest.raises(Stop):
        train(tiny_config(*QUICK, f"model.init_from={tmp_path / 'source.pt'}"), tmp_path / "run")

    fresh, expected = spy.built[0], source.state_dict()
    assert started["head.weight"].shape[0] == 2  # the synthetic set's classes
    for key, value in expected.items():
        if key.startswith("head.") and source_classes != 2:
            assert torch.equal(started[key], fresh[key]), key  # left at its fresh initialisation
        else:
            assert torch.equal(started[key], value), key
    assert not torch.equal(fresh["backbone.conv1.weight"], expected["backbone.conv1.weight"])


# --- mixed precision on the CPU ----------------------------------------------------------------------

def test_bf16_on_the_cpu_runs_the_network_under_autocast_and_keeps_float32_weights_without_a_scaler(
        tiny_config, tmp_path, monkeypatch):
    outputs = []

    def loss(output, labels):
        outputs.append(output.dtype)
        value = LOSS_FN(output, labels)
        assert value.dtype == torch.float32
        return value

    monkeypatch.setattr(trainer_module, "loss_fn", loss)
    spy = Spy(monkeypatch)
    result = train(tiny_config(*QUICK, "runtime.precision=bf16", "optim.epochs=1", "optim.warmup_epochs=0"),
                   tmp_path)
    assert outputs == [torch.bfloat16, torch.bfloat16]
    assert len(spy.steps) == 2
    assert all(g.dtype == torch.float32 for step in spy.steps for g in step["grads"].values())
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert checkpoint["scaler"] is None  # bf16 needs no loss scaling
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all()
               for v in checkpoint["model"].values() if v.is_floating_point())
    assert math.isfinite(result["val_top1"])
