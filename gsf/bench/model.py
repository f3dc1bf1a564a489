"""Model speed and memory: inference and training-step time, clips/s and peak training memory of TSN, TSM,
GSM and GSF video models (and TAM and TIN on request), with ratios against the TSN row of the same backbone, clip length and mode
(issues 8 and 17: eager and ``torch.compile`` side by side, each GSF path of ``GateShiftFuse``).

All models of one backbone and clip length are timed in one process, interleaved (A B C ... A B C ...), so
machine load hits every row alike; each figure is the median of the repeats, after warm-up. The ratios are of those
medians. Peak training memory: on CUDA ``torch.cuda.max_memory_allocated`` over one training step; on
CPU the growth of the peak resident set (``VmHWM``) over one training step, each model in a fresh
subprocess, because CPU tensor allocations are not visible to ``tracemalloc``.
GMACs: ``gsf.complexity.measure_complexity`` (conv + linear multiply-accumulates per view, docs/gsf-operator.md section 3).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from gsf.bench.table_files import write_table

COLUMNS = (
    "model", "backbone", "temporal", "fraction", "gsf_path", "mode", "frames", "batch", "input_px", "threads",
    "infer_ms", "infer_ms_min", "infer_ms_max", "infer_clips_per_s",
    "train_step_ms", "train_step_ms_min", "train_step_ms_max", "train_clips_per_s",
    "peak_train_mem_mb", "gmacs", "params", "ratio_infer", "ratio_train", "ratio_mem", "warmup_s", "note",
)
DEFAULT_BACKBONES = ("resnet50", "bninception")
DEFAULT_TEMPORAL = ("none", "tsm", "gsm", "gsf")
DEFAULT_FRACTIONS = (0.25, 0.5, 1.0)
MODES = ("eager", "compile")
NUM_CLASSES = 174
# Before any compiled warm-up has been seen, the time budget assumes this much for one (it includes
# inductor's compile of the inference and the training graph; see results/benchmarks/README.md, "GPU").
FIRST_COMPILE_ESTIMATE_S = 90.0
FIRST_EAGER_ESTIMATE_S = 5.0


def _has_fraction(temporal: str) -> bool:
    """Whether the kind has a channel fraction and GSF paths (GSM and GSF: gsf.ops.TEMPORAL_MODULES)."""
    from gsf.ops import temporal_kind

    return "channel_fraction" in {knob.name for knob in temporal_kind(temporal).knobs}


def _variants(temporal: tuple[str, ...], fractions: tuple[float, ...],
              gsf_paths: tuple[str, ...] = ("auto",)) -> list[tuple[str, float, str]]:
    """(temporal, fraction, GSF path) rows in the order given, TSN first (the ratio baseline); TSN, TSM, TAM
    and TIN have no channel fraction and no GSF path ("auto")."""
    rows = [("none", 1.0, "auto")]
    for kind in temporal:
        if kind == "none":
            continue
        if not _has_fraction(kind):
            rows.append((kind, 1.0, "auto"))
        else:
            rows += [(kind, f, path) for f in fractions for path in gsf_paths]
    return rows


def _name(backbone: str, temporal: str, fraction: float, path: str = "auto") -> str:
    label = "tsn" if temporal == "none" else temporal
    name = f"{backbone}_{label}" + (f"_fraction{fraction:g}" if _has_fraction(temporal) else "")
    return name + (f"_{path}" if _has_fraction(temporal) and path != "auto" else "")


def _gsf_path_used(temporal: str, path: str, device: str, mode: str) -> str:
    """The GSF path a row's modules take on `device` in `mode` ("" for the kinds without one)."""
    from gsf.ops import path_for_device

    if not _has_fraction(temporal):
        return ""
    return path_for_device(device, compiled=mode == "compile") if path == "auto" else path


def _build(backbone: str, temporal: str, fraction: float, *, device: str, channels_last: bool,
           gsf_path: str = "auto", num_frames: int):
    from gsf.models.registry import build_model
    from gsf.ops import set_gsf_path

    torch.manual_seed(0)
    # num_frames: the clip length TAM and TIN are built for (the other kinds run at any T)
    model = build_model(backbone=backbone, temporal=temporal, num_classes=NUM_CLASSES, channel_fraction=fraction,
                        num_frames=num_frames)
    set_gsf_path(model, gsf_path)
    model = model.to(device)
    if channels_last:  # 4-d conv weights only: the GSF gate conv is 3-d
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.to(memory_format=torch.channels_last)
    return model


class _Runner:
    """One model's inference and training-step closures, through `forward` (the model, or it compiled)."""

    def __init__(self, model, forward, *, batch: int, frames: int, size: int, device: str, dtype: str):
        self.model = model
        self.device = device
        self.x = torch.randn(batch, frames, 3, size, size, device=device)
        self.y = torch.randint(0, NUM_CLASSES, (batch,), device=device)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
        self.autocast = dtype == "bfloat16"
        self.forward = forward

    def _ctx(self):
        return torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.autocast)

    def _sync(self):
        if self.device == "cuda":
            torch.cuda.synchronize()

    def infer(self) -> float:
        self.model.eval()
        self._sync()
        start = time.perf_counter()
        with torch.no_grad(), self._ctx():
            self.forward(self.x)
        self._sync()
        return time.perf_counter() - start

    def train_step(self) -> float:
        self.model.train()
        self._sync()
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        with self._ctx():
            loss = F.cross_entropy(self.forward(self.x).float(), self.y)
        loss.backward()
        self.optimizer.step()
        self._sync()
        return time.perf_counter() - start

    def warm_up(self, rounds: int) -> float:
        """`rounds` untimed inference + training steps (compilation happens in the first); their seconds."""
        start = time.perf_counter()
        for _ in range(rounds):
            self.infer()
            self.train_step()
        return time.perf_counter() - start


class _Clock:
    """The optional time budget of one `bench_model` call: a warm-up (where compilation happens) starts
    only if the longest one seen so far of its mode, or a first estimate, still fits."""

    def __init__(self, budget_s: float | None):
        self.start = time.perf_counter()
        self.budget_s = budget_s
        self.longest = {"eager": FIRST_EAGER_ESTIMATE_S, "compile": FIRST_COMPILE_ESTIMATE_S}
        self.seen = {"eager": False, "compile": False}

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return float("inf") if self.budget_s is None else self.budget_s - self.elapsed()

    def fits(self, mode: str) -> bool:
        return self.longest[mode] <= self.left()

    def record(self, mode: str, seconds: float) -> None:
        self.longest[mode] = seconds if not self.seen[mode] else max(self.longest[mode], seconds)
        self.seen[mode] = True


def _progress(clock: _Clock, message: str) -> None:
    print(f"[{clock.elapsed():7.1f} s] {message}", flush=True)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _cpu_peak_train_mb(spec: dict) -> float | None:
    """Run in a fresh process: growth of the peak resident set over one training step, in MB, eager or
    compiled alike. One training step first (compilation, the optimizer's state, the allocator's first
    requests); then the freed heap goes back to the system (``malloc_trim``) and the kernel's peak is reset to
    the current resident set (``/proc/self/clear_refs``), so the figure is what the measured step itself
    needs above what lives between steps, as ``torch.cuda.max_memory_allocated`` gives on CUDA. None where
    the peak cannot be reset (not Linux)."""
    torch.set_num_threads(spec["threads"])
    model = _build(spec["backbone"], spec["temporal"], spec["fraction"], device="cpu",
                   channels_last=spec["channels_last"], gsf_path=spec["gsf_path"], num_frames=spec["frames"])
    forward = model if spec["mode"] == "eager" else torch.compile(model, backend=spec["compile_backend"],
                                                                    dynamic=False)
    runner = _Runner(model, forward, batch=spec["batch"], frames=spec["frames"], size=spec["size"], device="cpu",
                     dtype=spec["dtype"])
    runner.train_step()
    if not _reset_peak_rss():
        return None
    before = _peak_rss_kib()
    runner.train_step()
    return (_peak_rss_kib() - before) / 1024.0


def _reset_peak_rss() -> bool:
    """Return freed heap memory to the system and reset this process's peak resident set (``VmHWM``) to its
    current one (Linux >= 4.0: writing 5 to ``/proc/self/clear_refs``). False where that is not possible."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except (OSError, AttributeError):
        return False
    return True


def _peak_rss_kib() -> int:
    """Peak resident set of this process in KiB (``VmHWM``, which :func:`_reset_peak_rss` resets)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    from gsf.errors import GSFUnsupportedError

    raise GSFUnsupportedError("/proc/self/status has no VmHWM line: peak memory cannot be measured here; "
                              "pass --no-memory")


def _peak_train_mb(runner: _Runner, spec: dict) -> float | None:
    """Peak memory of one training step over what was allocated before it, in MB: on CUDA
    ``torch.cuda.max_memory_allocated`` for this runner (eager or compiled); on CPU the peak resident set's
    growth in a fresh process (:func:`_cpu_peak_train_mb`; a compiled row compiles there again, mostly from
    Inductor's on-disk cache)."""
    if spec["device"] == "cuda":
        runner.train_step()  # optimizer state exists before the measured step
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        runner.train_step()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_cpu_peak_train_mb, (spec,))


def conditions_tag(*, device: str, dtype: str, channels_last: bool, modes=("eager",), threads: int) -> str:
    """timm-style file-name tag: device (with GPU name), dtype, layout, compile, torch version, threads."""
    parts = [device]
    if device == "cuda":
        parts.append(torch.cuda.get_device_name().replace(" ", "").replace("NVIDIA", "").lower())
    parts.append(dtype)
    if channels_last:
        parts.append("nhwc")
    if "compile" in modes:
        parts.append("eager-compile" if "eager" in modes else "compile")
    parts.append(f"pt{torch.__version__.split('+')[0]}")
    if device == "cpu":
        parts.append(f"t{threads}")
    return "-".join(parts)


@contextlib.contextmanager
def _dynamo_limits(enabled: bool):
    """Every model of a run shares the code objects dynamo caches graphs on (one graph per model, mode,
    clip length and train/eval): raise the recompile limit, and fail rather than fall back to eager
    silently if it is still hit."""
    if not enabled:
        yield
        return
    with torch._dynamo.config.patch(recompile_limit=256, fail_on_recompile_limit_hit=True):
        yield


def _check_arguments(*, device, dtype, modes, gsf_paths, frames, repeats, warmup, budget_s) -> None:
    from gsf.errors import GSFConfigError
    from gsf.ops import GSF_PATHS

    if device == "cuda" and not torch.cuda.is_available():
        raise GSFConfigError("--device cuda: no CUDA device is available")
    if dtype not in ("float32", "bfloat16"):
        raise GSFConfigError(f"--dtype must be float32 or bfloat16, got {dtype!r}")
    if not modes or any(mode not in MODES for mode in modes):
        raise GSFConfigError(f"--modes must be one or both of {list(MODES)}, got {list(modes)}")
    if not gsf_paths or any(path not in GSF_PATHS for path in gsf_paths):
        raise GSFConfigError(f"--gsf-paths must be among {list(GSF_PATHS)}, got {list(gsf_paths)}")
    if not frames or any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in frames):
        raise GSFConfigError(f"--frames must be positive ints, got {list(frames)}")
    if repeats < 1 or warmup < 0:
        raise GSFConfigError(f"--repeats must be >= 1 and --warmup >= 0, got {repeats} and {warmup}")
    if "compile" in modes and warmup < 1:
        raise GSFConfigError("--modes compile needs --warmup >= 1: compilation happens in the first call")
    if budget_s is not None and budget_s <= 0:
        raise GSFConfigError(f"--budget-s must be positive, got {budget_s}")


def bench_model(*, backbones=DEFAULT_BACKBONES, temporal=DEFAULT_TEMPORAL, fractions=DEFAULT_FRACTIONS,
                frames: int | tuple[int, ...] = 8, batch: int = 1, size: int = 224, device: str = "cpu",
                dtype: str = "float32", channels_last: bool = False, modes=("eager",), gsf_paths=("auto",),
                repeats: int = 3, warmup: int = 1, threads: int | None = None, memory: bool = True,
                gmacs: bool = True, budget_s: float | None = None, compile_backend: str = "inductor",
                out_dir: str | os.PathLike | None = "results/benchmarks") -> list[dict]:
    """Time every (backbone, clip length, temporal, fraction, GSF path, mode) row; print the table and write
    CSV + Markdown to ``out_dir`` (``None``: do not write), rewritten after each clip length so an
    interrupted run keeps what it measured. Returns the rows.

    modes: "eager" and/or "compile" (``torch.compile(model, backend=compile_backend, dynamic=False)``), side
    by side in the same interleaved rounds; the ratios are against TSN in the same mode. gsf_paths: GSF/GSM
    rows for each path of `GateShiftFuse` ("auto": the device's own in each mode, `gsf.ops.path_for_device`).
    The fused path is timed eager only, as compiled runs never take it (docs/compile.md): its Python loops
    over pieces unroll under dynamo into a graph too large to compile in a benchmark's time. budget_s: a
    warm-up (compilation included) is skipped, its row noted, when the longest one so far of its mode would
    not fit in what is left; the timed rounds are cut to fit.
    """
    from gsf.complexity import measure_complexity

    frames_list = (frames,) if isinstance(frames, int) else tuple(frames)
    modes, gsf_paths = tuple(modes), tuple(gsf_paths)
    _check_arguments(device=device, dtype=dtype, modes=modes, gsf_paths=gsf_paths, frames=frames_list,
                     repeats=repeats, warmup=warmup, budget_s=budget_s)
    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    settings = _Settings(batch=batch, size=size, device=device, dtype=dtype, channels_last=channels_last, modes=modes,
                         repeats=repeats, warmup=warmup, threads=threads, memory=memory,
                         compile_backend=compile_backend)
    clock = _Clock(budget_s)
    tag = conditions_tag(device=device, dtype=dtype, channels_last=channels_last, modes=modes, threads=threads)
    rows: list[dict] = []
    with _dynamo_limits("compile" in modes):
        for backbone in backbones:
            variants = _variants(tuple(temporal), tuple(fractions), gsf_paths)
            for num_frames in frames_list:  # models built per clip length: TAM's and TIN's weights are shaped by it
                models, forwards = [], []
                for kind, fraction, path in variants:
                    model = _build(backbone, kind, fraction, device=device, channels_last=channels_last,
                                   gsf_path=path, num_frames=num_frames)
                    models.append(model)
                    forwards.append({"eager": model} | ({"compile": torch.compile(model, backend=compile_backend,
                                                                                  dynamic=False)}
                                                        if "compile" in modes else {}))
                _progress(clock, f"{backbone} T={num_frames}: {len(variants)} models built")
                rows += _bench_clip_length(
                    backbone, variants, models, forwards, clock, num_frames=num_frames, settings=settings,
                    gmacs=(lambda model, t: round(measure_complexity(model, num_frames=t, input_size=size).gmacs, 4))
                    if gmacs else None)
                if out_dir is not None:
                    _write(rows, Path(out_dir), f"model-infer-train-{tag}",
                           _conditions(settings, compile_backend=compile_backend, frames_list=frames_list,
                                       budget_s=budget_s, clock=clock))
                del models, forwards
    _print(rows, _conditions(settings, compile_backend=compile_backend, frames_list=frames_list, budget_s=budget_s,
                             clock=clock))
    return rows


@dataclass(frozen=True)
class _Settings:
    """How every row of one :func:`bench_model` call is measured (its arguments, checked)."""

    batch: int
    size: int
    device: str
    dtype: str
    channels_last: bool
    modes: tuple[str, ...]
    repeats: int
    warmup: int
    threads: int
    memory: bool
    compile_backend: str


@dataclass(frozen=True)
class _Entry:
    """One row to time: a variant (its index) in one mode; without a runner where it is not timed, the note
    saying why."""

    variant: int
    mode: str
    runner: _Runner | None
    note: str = ""


@dataclass(frozen=True)
class _Timings:
    """The interleaved timed rounds of one clip length: seconds per round of each timed entry (by index)."""

    rounds: int
    infer: dict[int, list[float]]
    train: dict[int, list[float]]


def _conditions(settings: _Settings, *, compile_backend, frames_list, budget_s, clock) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    compiled = f", torch.compile ({compile_backend}, dynamic=False)" if "compile" in settings.modes else ""
    return (f"{_device_name(settings.device)}; torch {torch.__version__}, {settings.threads} threads; "
            f"{settings.dtype}{', channels_last' if settings.channels_last else ''}; modes "
            f"{'+'.join(settings.modes)}{compiled}; {'/'.join(str(t) for t in frames_list)} frames, batch "
            f"{settings.batch}, {settings.size} px; median of {settings.repeats} "
            f"interleaved repeats after {settings.warmup} warm-up"
            f"{f'; time budget {budget_s:g} s' if budget_s else ''}; {clock.elapsed():.0f} s so far; "
            f"load average at the end {'/'.join(f'{v:.2f}' for v in load) if load else 'n/a'}")


def _entries(variants, models, forwards, *, num_frames: int, settings: _Settings) -> list[_Entry]:
    """A runner per variant and mode; the fused GSF path is not compiled (see :func:`bench_model`)."""
    entries = []
    for i, (kind, _fraction, path) in enumerate(variants):
        for mode in settings.modes:
            if mode == "compile" and _gsf_path_used(kind, path, settings.device, mode) == "fused":
                entries.append(_Entry(i, mode, None, "fused path not compiled: compiled runs take the composed "
                                                     "path (docs/compile.md)"))
                continue
            runner = _Runner(models[i], forwards[i][mode], batch=settings.batch, frames=num_frames,
                             size=settings.size, device=settings.device, dtype=settings.dtype)
            entries.append(_Entry(i, mode, runner))
    return entries


def _warm_up(entries: list[_Entry], backbone: str, variants, clock: _Clock, *, num_frames: int,
             settings: _Settings) -> tuple[list[_Entry], dict[int, float]]:
    """Warm every runner up, the eager ones first; one whose warm-up would not fit the time budget is
    skipped (its runner dropped, its note saying so). Returns the entries and the warm-up seconds by index."""
    entries = list(entries)
    warm_s: dict[int, float] = {}
    modes = settings.modes
    for order_mode in modes if "eager" not in modes else ("eager",) + tuple(m for m in modes if m != "eager"):
        for k, entry in enumerate(entries):
            mode = entry.mode
            if mode != order_mode or entry.runner is None:
                continue
            name = _name(backbone, *variants[entry.variant])
            if not clock.fits(mode):
                entries[k] = replace(entry, runner=None, note=f"skipped: time budget ({clock.left():.0f} s left, a "
                                                              f"{mode} warm-up takes up to {clock.longest[mode]:.0f} s)")
                _progress(clock, f"T={num_frames} {name} {mode}: skipped, time budget")
                continue
            _progress(clock, f"T={num_frames} {name} {mode}: warm-up"
                             f"{' (compiling inference and training graphs)' if mode == 'compile' else ''}")
            warm_s[k] = entry.runner.warm_up(settings.warmup)
            clock.record(mode, warm_s[k])
    return entries, warm_s


def _timed_rounds(entries: list[_Entry], clock: _Clock, *, num_frames: int, repeats: int) -> _Timings:
    """``repeats`` rounds in which every runner infers and takes a training step once, interleaved so that
    machine load hits every row alike. Under a time budget the first round's duration decides how many of
    the others still fit (the warm-ups cannot: a first compiled call includes its compilation)."""
    live = [k for k, entry in enumerate(entries) if entry.runner is not None]
    _progress(clock, f"T={num_frames}: up to {repeats} timed rounds of {len(live)} runs")
    infer: dict[int, list[float]] = {k: [] for k in live}
    train: dict[int, list[float]] = {k: [] for k in live}
    rounds = repeats
    done = 0
    while done < rounds:  # interleaved: every run once per round
        start = time.perf_counter()
        for k in live:
            infer[k].append(entries[k].runner.infer())
            train[k].append(entries[k].runner.train_step())
        done += 1
        if done == 1:
            round_s = time.perf_counter() - start
            if clock.budget_s is not None:
                rounds = max(1, min(repeats, 1 + int(clock.left() / round_s)))
            _progress(clock, f"T={num_frames}: {rounds} timed rounds (the first took {round_s:.1f} s)")
    return _Timings(rounds, infer, train)


def _measured(entry: _Entry, infer: list[float], train: list[float], warm_s: float, *, spec: dict,
              settings: _Settings) -> dict:
    """The timed columns of a row: medians, extremes and clips/s of its rounds, its peak training memory,
    and the medians in ms under ``_infer`` / ``_train`` for the ratios."""
    peak = _peak_train_mb(entry.runner, spec) if settings.memory else None
    inf_ms, tr_ms = _median(infer) * 1e3, _median(train) * 1e3
    batch = settings.batch
    return {
        "infer_ms": round(inf_ms, 2), "infer_ms_min": round(min(infer) * 1e3, 2),
        "infer_ms_max": round(max(infer) * 1e3, 2), "infer_clips_per_s": round(batch / inf_ms * 1e3, 3),
        "train_step_ms": round(tr_ms, 2), "train_step_ms_min": round(min(train) * 1e3, 2),
        "train_step_ms_max": round(max(train) * 1e3, 2),
        "train_clips_per_s": round(batch / tr_ms * 1e3, 3),
        "peak_train_mem_mb": None if peak is None else round(peak, 1), "warmup_s": round(warm_s, 1),
        "_infer": inf_ms, "_train": tr_ms}


def _rows(backbone: str, variants, models, entries: list[_Entry], timings: _Timings, warm_s: dict[int, float], *,
          num_frames: int, settings: _Settings, gmacs) -> list[dict]:
    """A row per entry: what it is, its GMACs and parameters, and where it was timed its measured columns."""
    complexity: dict[int, float | None] = {}
    rows = []
    for k, entry in enumerate(entries):
        i, mode, runner = entry.variant, entry.mode, entry.runner
        kind, fraction, path = variants[i]
        if i not in complexity:
            complexity[i] = gmacs(models[i], num_frames) if gmacs else None
        cut = runner and timings.rounds < settings.repeats
        row = {c: None for c in COLUMNS} | {
            "model": _name(backbone, kind, fraction, path), "backbone": backbone, "temporal": kind,
            "fraction": fraction, "gsf_path": _gsf_path_used(kind, path, settings.device, mode), "mode": mode,
            "frames": num_frames, "batch": settings.batch, "input_px": settings.size, "threads": settings.threads,
            "gmacs": complexity[i], "params": sum(p.numel() for p in models[i].parameters()),
            "note": entry.note + (f"; {timings.rounds} of {settings.repeats} repeats (time budget)" if cut else ""),
            "_infer": None, "_train": None}
        if runner is not None:
            spec = {"backbone": backbone, "temporal": kind, "fraction": fraction, "gsf_path": path,
                    "frames": num_frames, "batch": settings.batch, "size": settings.size, "device": settings.device,
                    "dtype": settings.dtype, "channels_last": settings.channels_last, "threads": settings.threads,
                    "mode": mode, "compile_backend": settings.compile_backend}
            row |= _measured(entry, timings.infer[k], timings.train[k], warm_s[k], spec=spec, settings=settings)
        rows.append(row)
    return rows


def _add_ratios(rows: list[dict]) -> None:
    """Ratios to the TSN row of the same mode, where both were measured; drops the ``_infer`` / ``_train``
    medians they are computed from."""
    for row in rows:
        base = next(r for r in rows if r["temporal"] == "none" and r["mode"] == row["mode"])
        if row["_infer"] is not None and base["_infer"] is not None:
            row["ratio_infer"] = round(row["_infer"] / base["_infer"], 3)
            row["ratio_train"] = round(row["_train"] / base["_train"], 3)
        if row["peak_train_mem_mb"] is not None and base["peak_train_mem_mb"]:
            row["ratio_mem"] = round(row["peak_train_mem_mb"] / base["peak_train_mem_mb"], 3)
    for row in rows:
        del row["_infer"], row["_train"]


def _bench_clip_length(backbone: str, variants, models, forwards, clock: _Clock, *, num_frames: int,
                       settings: _Settings, gmacs) -> list[dict]:
    """The rows of one backbone at one clip length: warm-ups (eager first), interleaved timed rounds,
    peak memory, ratios to the TSN row of the same mode."""
    entries = _entries(variants, models, forwards, num_frames=num_frames, settings=settings)
    entries, warm_s = _warm_up(entries, backbone, variants, clock, num_frames=num_frames, settings=settings)
    timings = _timed_rounds(entries, clock, num_frames=num_frames, repeats=settings.repeats)
    rows = _rows(backbone, variants, models, entries, timings, warm_s, num_frames=num_frames, settings=settings,
                 gmacs=gmacs)
    _add_ratios(rows)
    _progress(clock, f"T={num_frames}: done")
    return rows


def _device_name(device: str) -> str:
    if device == "cuda":
        return f"GPU {torch.cuda.get_device_name()}"
    from gsf.provenance import cpu_name

    return f"CPU {cpu_name()}, {os.cpu_count()} logical cores"


def _fmt(value) -> str:
    return "" if value is None else str(value)


def _print(rows: list[dict], conditions: str) -> None:
    print(conditions)
    print(f"{'model':40s} {'mode':7s} {'T':>3s} {'infer_ms':>9s} {'train_ms':>9s} {'mem_mb':>8s} {'gmacs':>7s} "
          f"{'r_inf':>6s} {'r_train':>7s} {'r_mem':>6s}  note")
    for r in rows:
        print(f"{r['model']:40s} {r['mode']:7s} {r['frames']:3d} {_fmt(r['infer_ms']):>9s} "
              f"{_fmt(r['train_step_ms']):>9s} {_fmt(r['peak_train_mem_mb']):>8s} {_fmt(r['gmacs']):>7s} "
              f"{_fmt(r['ratio_infer']):>6s} {_fmt(r['ratio_train']):>7s} {_fmt(r['ratio_mem']):>6s}  "
              f"{r['note'] or ''}")


def _write(rows: list[dict], out_dir: Path, stem: str, conditions: str) -> None:
    path = write_table(rows, columns=COLUMNS, out_dir=out_dir, stem=stem,
                       title="Model speed and memory (inference, training step)", preamble=[conditions])
    print(f"wrote {path}.csv and .md")


# -- profile -----------------------------------------------------------------------------------------

RESNET50_STAGES = ((256, 56), (512, 28), (1024, 14), (2048, 7))


def profile_stages(*, fraction: float = 1.0, frames: int = 8, rows: int = 8, threads: int | None = None) -> str:
    """torch.profiler top operators (self CPU time) of one GateShiftFuse at each ResNet-50 stage shape,
    inference and training (forward + backward), next to the 1x1 conv3 that precedes it in the block."""
    from torch.profiler import ProfilerActivity, profile

    from gsf.ops import GateShiftFuse

    if threads is not None:
        torch.set_num_threads(threads)
    report = []
    for channels, px in RESNET50_STAGES:
        torch.manual_seed(0)
        module = GateShiftFuse(channels, channel_fraction=fraction)
        conv3 = torch.nn.Conv2d(channels // 4, channels, 1, bias=False)
        x_in = torch.randn(frames, channels // 4, px, px, requires_grad=True)
        upstream = torch.randn(frames, channels, px, px)

        def infer(module=module, conv3=conv3, x_in=x_in):
            with torch.no_grad():
                module(conv3(x_in), num_frames=frames)

        def train(module=module, conv3=conv3, x_in=x_in, upstream=upstream):
            module(conv3(x_in), num_frames=frames).backward(upstream)

        for mode, step in (("inference", infer), ("training", train)):
            module.train(mode == "training")  # inference uses the running BN statistics, as in eval
            step()
            step()
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(3):
                    step()
            table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)
            report.append(f"## C={channels}, {px}x{px}, T={frames}, fraction {fraction:g}, {mode} (3 calls)\n"
                          f"```\n{table}\n```\n")
    text = "\n".join(report)
    print(text)
    return text


def configure_parser(parser) -> None:
    """Arguments of ``gsf bench model``."""
    parser.add_argument("--backbone", nargs="+", default=list(DEFAULT_BACKBONES), help="backbones to compare")
    parser.add_argument("--temporal", nargs="+", default=list(DEFAULT_TEMPORAL),
                        help="temporal modules, kinds of gsf.ops.TEMPORAL_MODULES (TSN = none is always included, as "
                             "the ratio baseline)")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(DEFAULT_FRACTIONS),
                        help="GSM/GSF channel fractions")
    parser.add_argument("--frames", type=int, nargs="+", default=[8], help="clip lengths T")
    parser.add_argument("--batch", type=int, default=1, help="clips per step")
    parser.add_argument("--size", type=int, default=224, help="input size in px")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: autocast")
    parser.add_argument("--channels-last", action="store_true", help="channels_last model and activations")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=None,
                        help="eager and/or compile (torch.compile), side by side; default eager")
    parser.add_argument("--compile", action="store_true", help="shorthand for --modes compile")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend (inductor; eager/aot_eager to check the code path quickly)")
    parser.add_argument("--gsf-paths", nargs="+", default=["auto"],
                        help="GateShiftFuse paths to time for GSM/GSF rows: auto (the device's), fused, composed")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="time budget in s: skip warm-ups (compiles) that would not fit, cut the repeats")
    parser.add_argument("--repeats", type=int, default=3, help="timed interleaved rounds (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-training-memory probe")
    parser.add_argument("--no-gmacs", action="store_true", help="skip the fvcore complexity count")
    parser.add_argument("--profile", action="store_true",
                        help="instead: torch.profiler top ops of GateShiftFuse at the ResNet-50 stage shapes")
    parser.add_argument("--out", default="results/benchmarks", help="folder for the CSV and Markdown table")


def run(args) -> int:
    if args.profile:
        for fraction in args.fractions:
            profile_stages(fraction=fraction, frames=args.frames[0], threads=args.threads)
        return 0
    modes = args.modes or (["compile"] if args.compile else ["eager"])
    bench_model(backbones=tuple(args.backbone), temporal=tuple(args.temporal), fractions=tuple(args.fractions),
                frames=tuple(args.frames), batch=args.batch, size=args.size, device=args.device, dtype=args.dtype,
                channels_last=args.channels_last, modes=tuple(modes), gsf_paths=tuple(args.gsf_paths),
                repeats=args.repeats, warmup=args.warmup, threads=args.threads, memory=not args.no_memory,
                gmacs=not args.no_gmacs, budget_s=args.budget_s, compile_backend=args.compile_backend,
                out_dir=args.out)
    return 0
