"""Model speed and memory: inference and training-step time, clips/s and peak training memory of TSN, TSM,
GSM and GSF video models, with ratios against the TSN row of the same backbone (issue 8).

All models of one backbone are timed in one process, interleaved (A B C ... A B C ...), so machine load
hits every row alike; each figure is the median of the repeats, after warm-up. The ratios are of those
medians. Peak training memory: on CUDA ``torch.cuda.max_memory_allocated`` over one training step; on
CPU the growth of the peak resident set (``VmHWM``) over one training step, each model in a fresh
subprocess, because CPU tensor allocations are not visible to ``tracemalloc``.
GMACs: ``gsf.complexity.measure_complexity`` (conv + linear multiply-accumulates per view, GSF.md section 3).
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

COLUMNS = (
    "model", "backbone", "temporal", "fraction", "frames", "batch", "input_px", "threads",
    "infer_ms", "infer_ms_min", "infer_ms_max", "infer_clips_per_s",
    "train_step_ms", "train_step_ms_min", "train_step_ms_max", "train_clips_per_s",
    "peak_train_mem_mb", "gmacs", "params", "ratio_infer", "ratio_train", "ratio_mem",
)
DEFAULT_BACKBONES = ("resnet50", "bninception")
DEFAULT_TEMPORAL = ("none", "tsm", "gsm", "gsf")
DEFAULT_FRACTIONS = (0.25, 0.5, 1.0)
NUM_CLASSES = 174


def _variants(temporal: tuple[str, ...], fractions: tuple[float, ...]) -> list[tuple[str, float]]:
    """(temporal, fraction) rows; TSN first (the ratio baseline); TSN and TSM have no channel fraction."""
    rows = [("none", 1.0)]
    for kind in temporal:
        if kind == "none":
            continue
        rows += [(kind, 1.0)] if kind == "tsm" else [(kind, f) for f in fractions]
    return rows


def _name(backbone: str, temporal: str, fraction: float) -> str:
    label = "tsn" if temporal == "none" else temporal
    return f"{backbone}_{label}" + (f"_fraction{fraction:g}" if temporal in ("gsm", "gsf") else "")


def _build(backbone: str, temporal: str, fraction: float, *, device: str, channels_last: bool):
    from gsf.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(backbone=backbone, temporal=temporal, num_classes=NUM_CLASSES, channel_fraction=fraction)
    model = model.to(device)
    if channels_last:  # 4-d conv weights only: the GSF gate conv is 3-d
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.to(memory_format=torch.channels_last)
    return model


class _Runner:
    """One model's inference and training-step closures."""

    def __init__(self, model, *, batch: int, frames: int, size: int, device: str, dtype: str, compile: bool):
        self.model = model
        self.device = device
        self.x = torch.randn(batch, frames, 3, size, size, device=device)
        self.y = torch.randint(0, NUM_CLASSES, (batch,), device=device)
        self.optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
        self.autocast = dtype == "bfloat16"
        self.forward = torch.compile(model) if compile else model

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


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _cpu_peak_train_mb(spec: dict) -> float:
    """Run in a fresh process: growth of the peak RSS over one training step (after the model, input and
    optimizer exist), in MB. A first step in an earlier process of the same kind would make it smaller."""
    import resource

    torch.set_num_threads(spec["threads"])
    model = _build(spec["backbone"], spec["temporal"], spec["fraction"], device="cpu",
                   channels_last=spec["channels_last"])
    runner = _Runner(model, batch=spec["batch"], frames=spec["frames"], size=spec["size"], device="cpu",
                     dtype=spec["dtype"], compile=False)
    before = _peak_rss_kib(resource)
    runner.train_step()
    after = _peak_rss_kib(resource)
    return (after - before) / 1024.0


def _peak_rss_kib(resource) -> int:
    """Peak resident set of this process in KiB. Linux's ``ru_maxrss`` survives ``execve``, so a spawned
    child starts with its parent's peak (often larger than one training step); ``VmHWM`` belongs to the
    process image and starts afresh, so it is read first."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_train_mb(runner: _Runner, spec: dict) -> float:
    if spec["device"] == "cuda":
        runner.train_step()  # optimizer state exists before the measured step
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        runner.train_step()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_cpu_peak_train_mb, (spec,))


def conditions_tag(*, device: str, dtype: str, channels_last: bool, compile: bool, threads: int) -> str:
    """timm-style file-name tag: device (with GPU name), dtype, layout, compile, torch version, threads."""
    parts = [device]
    if device == "cuda":
        parts.append(torch.cuda.get_device_name().replace(" ", "").replace("NVIDIA", "").lower())
    parts.append(dtype)
    if channels_last:
        parts.append("nhwc")
    if compile:
        parts.append("compile")
    parts.append(f"pt{torch.__version__.split('+')[0]}")
    if device == "cpu":
        parts.append(f"t{threads}")
    return "-".join(parts)


def bench_model(*, backbones=DEFAULT_BACKBONES, temporal=DEFAULT_TEMPORAL, fractions=DEFAULT_FRACTIONS,
                frames: int = 8, batch: int = 1, size: int = 224, device: str = "cpu",
                dtype: str = "float32", channels_last: bool = False, compile: bool = False, repeats: int = 3,
                warmup: int = 1, threads: int | None = None, memory: bool = True, gmacs: bool = True,
                out_dir: str | os.PathLike | None = "results/benchmarks") -> list[dict]:
    """Time every (backbone, temporal, fraction) row; print the table and write CSV + Markdown to ``out_dir``
    (``None``: do not write). Returns the rows."""
    from gsf.complexity import measure_complexity
    from gsf.errors import GSFConfigError

    if device == "cuda" and not torch.cuda.is_available():
        raise GSFConfigError("--device cuda: no CUDA device is available")
    if dtype not in ("float32", "bfloat16"):
        raise GSFConfigError(f"--dtype must be float32 or bfloat16, got {dtype!r}")
    if repeats < 1 or warmup < 0:
        raise GSFConfigError(f"--repeats must be >= 1 and --warmup >= 0, got {repeats} and {warmup}")
    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    rows: list[dict] = []
    for backbone in backbones:
        variants = _variants(tuple(temporal), tuple(fractions))
        runners, infos = [], []
        for kind, fraction in variants:
            model = _build(backbone, kind, fraction, device=device, channels_last=channels_last)
            info = {"gmacs": None, "params": sum(p.numel() for p in model.parameters())}
            if gmacs:
                info["gmacs"] = round(measure_complexity(model, num_frames=frames, input_size=size).gmacs, 4)
            runners.append(_Runner(model, batch=batch, frames=frames, size=size, device=device, dtype=dtype,
                                   compile=compile))
            infos.append(info)
        for runner in runners:
            for _ in range(warmup):
                runner.infer()
                runner.train_step()
        infer = [[] for _ in runners]
        train = [[] for _ in runners]
        for _ in range(repeats):  # interleaved: every model once per round
            for i, runner in enumerate(runners):
                infer[i].append(runner.infer())
                train[i].append(runner.train_step())
        for i, ((kind, fraction), runner) in enumerate(zip(variants, runners)):
            spec = {"backbone": backbone, "temporal": kind, "fraction": fraction, "frames": frames, "batch": batch,
                    "size": size, "device": device, "dtype": dtype, "channels_last": channels_last,
                    "threads": threads}
            peak = round(_peak_train_mb(runner, spec), 1) if memory else None
            inf_ms, tr_ms = _median(infer[i]) * 1e3, _median(train[i]) * 1e3
            rows.append({
                "model": _name(backbone, kind, fraction), "backbone": backbone, "temporal": kind,
                "fraction": fraction, "frames": frames, "batch": batch, "input_px": size, "threads": threads,
                "infer_ms": round(inf_ms, 2), "infer_ms_min": round(min(infer[i]) * 1e3, 2),
                "infer_ms_max": round(max(infer[i]) * 1e3, 2), "infer_clips_per_s": round(batch / inf_ms * 1e3, 3),
                "train_step_ms": round(tr_ms, 2), "train_step_ms_min": round(min(train[i]) * 1e3, 2),
                "train_step_ms_max": round(max(train[i]) * 1e3, 2),
                "train_clips_per_s": round(batch / tr_ms * 1e3, 3), "peak_train_mem_mb": peak,
                **infos[i], "_infer": inf_ms, "_train": tr_ms,
            })
        base = rows[-len(variants)]  # the TSN row of this backbone
        for row in rows[-len(variants):]:
            row["ratio_infer"] = round(row["_infer"] / base["_infer"], 3)
            row["ratio_train"] = round(row["_train"] / base["_train"], 3)
            row["ratio_mem"] = (round(row["peak_train_mem_mb"] / base["peak_train_mem_mb"], 3)
                                if memory and base["peak_train_mem_mb"] else None)
        del runners
    for row in rows:
        row.pop("_infer")
        row.pop("_train")
    tag = conditions_tag(device=device, dtype=dtype, channels_last=channels_last, compile=compile, threads=threads)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    conditions = (f"{_device_name(device)}; torch {torch.__version__}, {threads} threads; {dtype}"
                  f"{', channels_last' if channels_last else ''}{', torch.compile' if compile else ''}; "
                  f"{frames} frames, batch {batch}, {size} px; median of {repeats} interleaved repeats after "
                  f"{warmup} warm-up; load average at the end "
                  f"{'/'.join(f'{v:.2f}' for v in load) if load else 'n/a'}")
    _print(rows, conditions)
    if out_dir is not None:
        _write(rows, Path(out_dir), f"model-infer-train-{tag}", conditions)
    return rows


def _device_name(device: str) -> str:
    if device == "cuda":
        return f"GPU {torch.cuda.get_device_name()}"
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {name}, {os.cpu_count()} logical cores"


def _fmt(value) -> str:
    return "" if value is None else str(value)


def _print(rows: list[dict], conditions: str) -> None:
    print(conditions)
    print(f"{'model':36s} {'infer_ms':>9s} {'train_ms':>9s} {'mem_mb':>8s} {'gmacs':>7s} "
          f"{'r_inf':>6s} {'r_train':>7s} {'r_mem':>6s}")
    for r in rows:
        print(f"{r['model']:36s} {r['infer_ms']:9.1f} {r['train_step_ms']:9.1f} {_fmt(r['peak_train_mem_mb']):>8s} "
              f"{_fmt(r['gmacs']):>7s} {r['ratio_infer']:6.3f} {r['ratio_train']:7.3f} {_fmt(r['ratio_mem']):>6s}")


def _write(rows: list[dict], out_dir: Path, stem: str, conditions: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["# Model speed and memory (inference, training step)", "", conditions, "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(row[c]) for c in COLUMNS) + " |" for row in rows]
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out_dir / stem}.csv and .md")


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

        def infer():
            with torch.no_grad():
                module(conv3(x_in), num_frames=frames)

        def train():
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
                        help="temporal modules (TSN = none is always included, as the ratio baseline)")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(DEFAULT_FRACTIONS),
                        help="GSM/GSF channel fractions")
    parser.add_argument("--frames", type=int, default=8, help="clip length T")
    parser.add_argument("--batch", type=int, default=1, help="clips per step")
    parser.add_argument("--size", type=int, default=224, help="input size in px")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="bfloat16: autocast")
    parser.add_argument("--channels-last", action="store_true", help="channels_last model and activations")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
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
            profile_stages(fraction=fraction, frames=args.frames, threads=args.threads)
        return 0
    bench_model(backbones=tuple(args.backbone), temporal=tuple(args.temporal), fractions=tuple(args.fractions),
                frames=args.frames, batch=args.batch, size=args.size, device=args.device, dtype=args.dtype,
                channels_last=args.channels_last, compile=args.compile, repeats=args.repeats, warmup=args.warmup,
                threads=args.threads, memory=not args.no_memory, gmacs=not args.no_gmacs, out_dir=args.out)
    return 0
