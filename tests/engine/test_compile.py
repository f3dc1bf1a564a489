"""runtime.compile: gsf train and gsf eval under torch.compile (docs/compile.md), on the tiny synthetic data.

The runs compile with the "aot_eager" backend: dynamo's graph capture (fullgraph, as the engine asks) and AOT
autograd's forward and backward graphs, without Inductor's code generation (half a minute to six minutes for the
first epoch of such a run on a 2-core CPU, docs/compile.md). `torch.compile` is replaced by a recorder that keeps
what the engine asked for (mode, fullgraph, dynamic, the GSF path of the model) and compiles with that backend.
"""

import json
import types

import pytest
import torch

from gsf.engine import train
from gsf.engine import trainer as trainer_module
from gsf.engine.checkpoint import load_checkpoint
from gsf.engine.config import load_config, model_kwargs
from gsf.engine.evaluate import evaluate_checkpoint
from gsf.engine.trainer import CompileClock
from gsf.errors import GSFConfigError
from gsf.models import build_model
from gsf.ops import GateShiftFuse

from .conftest import TINY, Interrupt, StopAfter

# Two frames and GSF in the last stage only: the fewest operators dynamo traces for a GSF model.
SMALL = ("runtime.compile=true", "data.num_frames=2", "model.stages=[4]", "runtime.num_threads=1")


class CompileRecorder:
    """Stands in for `torch.compile`: records each call, compiles with the aot_eager backend."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __call__(self, model, **kwargs):
        paths = {m.path for m in model.modules() if isinstance(m, GateShiftFuse)}
        self.calls.append({**kwargs, "gsf_paths": paths})
        return self.real(model, backend="aot_eager", fullgraph=kwargs["fullgraph"], dynamic=kwargs["dynamic"])


def record_compiles(monkeypatch) -> CompileRecorder:
    recorder = CompileRecorder(torch.compile)
    monkeypatch.setattr(torch, "compile", recorder)
    torch._dynamo.reset()  # graphs left by earlier tests would be reused, with no compile to measure
    return recorder


@pytest.fixture(scope="module")
def compiled_runs(synth_root, tmp_path_factory):
    """A compiled run of 2 epochs, and one stopped after epoch 1 and resumed for the second (both compiled)."""
    out = tmp_path_factory.mktemp("compiled")
    config = load_config(None, [*TINY, f"data.root={synth_root}", *SMALL, "data.test_views="])
    with pytest.MonkeyPatch.context() as monkeypatch:
        recorder = record_compiles(monkeypatch)
        result = train(config, out / "straight")
        with pytest.raises(Interrupt):
            train(config, out / "resumed", callbacks=[StopAfter(1)])
        train(config, out / "resumed", resume=True)
    torch._dynamo.reset()
    return types.SimpleNamespace(config=config, out=out, recorder=recorder, result=result)


@pytest.mark.slow
def test_a_compiled_run_resumed_after_one_epoch_ends_with_the_weights_of_a_straight_compiled_run(compiled_runs):
    out, recorder = compiled_runs.out, compiled_runs.recorder
    # every run compiled its model in one graph per shape, in torch's default mode, GSF on its composed path
    assert len(recorder.calls) == 3
    for call in recorder.calls:
        assert call == {"mode": None, "fullgraph": True, "dynamic": False, "gsf_paths": {"composed"}}
    straight = load_checkpoint(out / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(out / "resumed" / "checkpoints" / "last.pt")
    assert straight["epoch"] == resumed["epoch"] == 2 and straight["step"] == resumed["step"] == 4
    assert straight["model"].keys() == resumed["model"].keys()
    for key, value in straight["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    for index, entry in straight["optimizer"]["state"].items():
        for name, value in entry.items():
            assert torch.equal(resumed["optimizer"]["state"][index][name], value), (index, name)
    # compile time is logged per epoch: the straight run's first epoch compiled its train and eval graphs
    epochs = [json.loads(line) for line in (out / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in epochs] == [1.0, 2.0]
    assert epochs[0]["compile_seconds"] > 0 and all(m["clips_per_second"] > 0 for m in epochs)
    assert compiled_runs.result["total_compile_seconds"] == pytest.approx(sum(m["compile_seconds"] for m in epochs))


@pytest.mark.slow
def test_a_compiled_runs_checkpoint_has_no_compile_prefix_and_loads_into_an_eager_model(compiled_runs, monkeypatch):
    config, out = compiled_runs.config, compiled_runs.out
    checkpoint = load_checkpoint(out / "straight" / "checkpoints" / "last.pt")
    assert not any("_orig_mod" in key for key in checkpoint["model"])
    eager = build_model(**model_kwargs(config, num_classes=2, pretrained=False))
    eager.load_state_dict(checkpoint["model"])  # strict: every key, no other
    assert all(m.path == "auto" for m in eager.modules() if isinstance(m, GateShiftFuse))
    # gsf eval of that checkpoint: eager, and compiled as runtime.compile asks, give the same scores
    plain = evaluate_checkpoint(config.copy({"runtime.compile": False}), out / "straight" / "checkpoints" / "last.pt",
                                views="1x1", out_dir=out / "eval-eager")
    recorder = record_compiles(monkeypatch)
    compiled = evaluate_checkpoint(config, out / "straight" / "checkpoints" / "last.pt", views="1x1",
                                   out_dir=out / "eval-compiled")
    assert [call["gsf_paths"] for call in recorder.calls] == [{"composed"}]
    assert compiled["test_top1"] == plain["test_top1"]
    assert compiled["test_loss"] == pytest.approx(plain["test_loss"], rel=1e-5)


@pytest.mark.parametrize(("text", "named"), [("fast", "'fast'"), ("reduce-overhead", "'reduce-overhead'"),
                                            ("max_autotune", "'max_autotune'"), ("1", "1 is not of type"),
                                            ("''", "''")])
def test_a_bad_compile_value_is_a_config_error_naming_the_key_and_the_value(text, named):
    with pytest.raises(GSFConfigError, match=r"runtime\.compile") as err:
        load_config(None, [f"runtime.compile={text}"], check=False)
    assert named in str(err.value)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("false", False), ("max-autotune", "max-autotune")])
def test_the_compile_values_are_read_from_yaml_text(text, value):
    parsed = load_config(None, [f"runtime.compile={text}"], check=False).runtime.compile
    assert parsed == value and type(parsed) is type(value)


def test_compile_clock_counts_a_compilation_and_not_a_call_that_reuses_its_graph():
    torch._dynamo.reset()
    function = torch.compile(lambda x: torch.sin(x) + 1, backend="eager", fullgraph=True, dynamic=False)
    with CompileClock() as clock:
        function(torch.ones(3))
        compiled_once = clock.seconds
        function(torch.ones(3))
    assert compiled_once > 0 and clock.seconds == compiled_once
    function(torch.ones(4))  # a new shape compiles again, outside the clock: not counted
    assert clock.seconds == compiled_once
    torch._dynamo.reset()


class FakeTime:
    """`time` for the trainer: a clock that moves only when told (`advance`)."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def test_clips_per_second_leaves_out_the_time_spent_compiling(tiny_config, tmp_path, monkeypatch):
    # The "compiled" model takes 1 s per call, and its first call compiles for 1000 s more (inside dynamo's
    # compile callbacks, which CompileClock reads).
    from torch._dynamo.callback import CallbackTrigger, callback_handler

    clock = FakeTime()
    monkeypatch.setattr(trainer_module, "time", clock)

    class SlowFirstCall(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.inner, self.calls = model, 0

        def forward(self, video):
            self.calls += 1
            if self.calls == 1:
                with callback_handler.install_callbacks(CallbackTrigger.DYNAMO, "0/0"):
                    clock.advance(1000.0)
            clock.advance(1.0)
            return self.inner(video)

    monkeypatch.setattr(trainer_module, "compile_model", lambda model, setting: SlowFirstCall(model))
    config = tiny_config("runtime.compile=true", "model.temporal=none", "optim.epochs=1", "optim.warmup_epochs=0",
                         "data.test_views=")
    train(config, tmp_path)
    (epoch,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # 6 clips in 2 steps of 1 s each; validation's 2 clips in one more call
    assert epoch["compile_seconds"] == 1000.0
    assert epoch["clips_per_second"] == 6 / 2.0
