"""A training epoch end to end, data loader in the loop: TSN against GSF (and any other temporal kinds asked
for), and where each one's time goes.

The data are the synthetic benchmark (:mod:`gsf.data.synth`) written on the fly in a temporary folder, in the
SSv2 release layout, and read the way ``gsf train`` reads it: :func:`gsf.data.datasets.build_dataset` with the
release's train augmentation (docs/recipe.md: RandAugment, multi-scale crop, flip, normalisation as the
backbone's weights expect), batches of :func:`gsf.data.datasets.collate_clips` from a ``DataLoader`` whose
workers are seeded as the engine seeds them (:func:`gsf.engine.loaders.seed_worker`). The training step is the
engine's: cross-entropy (:func:`gsf.engine.trainer.loss_fn`), gradient clipping and SGD with momentum and weight
decay at the recipe's defaults (:class:`gsf.engine.config.OptimConfig`).

One warm-up epoch per model first (untimed; with ``compile`` the model is compiled there, by
:func:`gsf.engine.evaluate.compile_model`, and the seconds spent compiling are counted by
:class:`gsf.engine.trainer.CompileClock`), then ``repeats`` timed epochs, the models interleaved epoch by
epoch (TSN, GSF, TSN, GSF, ...) so that machine load hits every model alike. Each epoch of a round reads the
same clips in the same order with the same augmentation draws.

Where an epoch's time goes, in the training loop (the main process), one clock read between phases, so the
phases are contiguous and add up to the epoch but for the loader's shut-down at its end: waiting for the next
batch, the host-to-device copy (CUDA), forward (with the loss), backward, optimizer step (``zero_grad``,
clipping, SGD); on CUDA the device is synchronised before each clock read. The figures of a row are those of
its median epoch (the timed epoch of median wall time; the lower middle one for an even count), so they add up.

Inside the loader, per clip: decoding (the data set's read, :meth:`gsf.data.datasets.VideoDataset.load_frames`)
and augmentation (its ``transform``), timed in a separate pass over the same clips in the main process with one
torch thread (as a loader worker runs), through the data set's own ``__getitem__``: the two are wrapped with
clocks on that pass's own data set object. The loader workers run them in parallel with the training loop, so
they cost wall time only where waiting for data is large. Measured figures: results/benchmarks/README.md,
"Training epoch end to end".
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import torch

from gsf.bench.table_files import write_table

PHASES = ("wait_data_s", "h2d_s", "forward_s", "backward_s", "optim_s")
COLUMNS = (
    "model", "backbone", "temporal", "gsf_path", "mode", "device", "frames", "input_px", "batch", "clips", "steps",
    "threads", "workers", "epoch_s", "clips_per_s", *PHASES, "other_s", "epochs_s", "ratio_epoch", "ratio_compute",
    "warmup_epoch_s", "compile_s", "decode_ms_per_clip", "augment_ms_per_clip", "item_ms_per_clip",
    "decode_share", "augment_share",
)
DEFAULT_TEMPORAL = ("none", "gsf")
NUM_CLASSES = 10  # synthetic classes (gsf.data.synth: pairs that differ by the direction of time)


@dataclass(frozen=True)
class Settings:
    """What one :func:`bench_train` call measures and how (its arguments, checked)."""

    backbone: str = "resnet50"
    temporal: tuple[str, ...] = DEFAULT_TEMPORAL
    frames: int = 8
    size: int = 112
    batch: int = 8
    workers: int = 2
    clips: int = 64
    repeats: int = 3
    threads: int | None = None
    device: str = "cpu"
    compile: bool = False
    compile_backend: str = "inductor"
    video_size: int = 128
    video_frames: int = 48
    num_classes: int = NUM_CLASSES
    seed: int = 0


def check_settings(s: Settings) -> None:
    """Raise :class:`gsf.errors.GSFConfigError` naming the argument and its value for a setting that cannot run."""
    from gsf.errors import GSFConfigError
    from gsf.models.registry import BACKBONES
    from gsf.vocabulary import TEMPORAL_KINDS

    unknown = [kind for kind in s.temporal if kind not in TEMPORAL_KINDS]
    if unknown:
        raise GSFConfigError(f"--temporal {' '.join(unknown)}: not a temporal kind; choose from {list(TEMPORAL_KINDS)}")
    if s.backbone not in BACKBONES:
        raise GSFConfigError(f"--backbone {s.backbone}: not a backbone; choose from {sorted(BACKBONES)}")
    if s.device not in ("cpu", "cuda"):
        raise GSFConfigError(f"--device {s.device}: must be cpu or cuda")
    if s.device == "cuda" and not torch.cuda.is_available():
        raise GSFConfigError("--device cuda: no CUDA device is available")
    for name, value, least in (("--frames", s.frames, 1), ("--size", s.size, 1), ("--batch", s.batch, 1),
                               ("--workers", s.workers, 0), ("--repeats", s.repeats, 1), ("--clips", s.clips, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise GSFConfigError(f"{name} {value}: must be an int >= {least}")
    if s.clips < s.batch:
        raise GSFConfigError(f"--clips {s.clips}: fewer clips than one batch (--batch {s.batch})")
    if s.threads is not None and (isinstance(s.threads, bool) or not isinstance(s.threads, int) or s.threads < 1):
        raise GSFConfigError(f"--threads {s.threads}: must be an int >= 1")
    if s.video_size < s.size:
        raise GSFConfigError(f"--video-size {s.video_size}: smaller than the crop (--size {s.size})")


def models_of(temporal) -> tuple[str, ...]:
    """The temporal kinds to time, TSN ("none", the ratio baseline) first, each once, in the order given."""
    kinds = ["none"]
    for kind in temporal:
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def median_index(values: list[float]) -> int:
    """The index of the median of ``values`` (the lower middle one for an even count)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    return order[(len(values) - 1) // 2]


def median_pass(passes: list[dict], key: str) -> dict:
    """The one of ``passes`` (measurements, each a dict of figures) whose ``key`` is the median (the lower
    middle one of an even count), whole: its figures, unlike per-figure medians, add up as they were measured."""
    return passes[median_index([measured[key] for measured in passes])]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _write_videos(root: Path, s: Settings) -> None:
    """The synthetic benchmark with at least ``s.clips`` training videos (one validation video a class)."""
    from gsf.data.synth import synthesize_dataset

    per_class = math.ceil(1.02 * s.clips / s.num_classes) + 2  # the validation share (1 %) rounds to one video
    synthesize_dataset(root, num_classes=s.num_classes, videos_per_class=per_class, num_frames=s.video_frames,
                       size=s.video_size, seed=s.seed, val_fraction=0.01)


def _dataset(root: Path, s: Settings):
    """The training split as ``gsf train`` reads it (train augmentation, the backbone's normalisation), cut to
    the first ``s.clips`` videos."""
    from gsf.data.datasets import build_dataset
    from gsf.errors import GSFDataError
    from gsf.models.registry import backbone_spec

    dataset = build_dataset("ssv2", root, "train", num_frames=s.frames, mode="train", input_size=s.size,
                            normalisation=backbone_spec(s.backbone).normalisation)
    if len(dataset) < s.clips:
        raise GSFDataError(f"synthetic set under {root} has {len(dataset)} training videos, {s.clips} asked for")
    dataset.records = dataset.records[: s.clips]
    return dataset


def _loader(dataset, s: Settings, round_index: int):
    """Round ``round_index``'s shuffled batches, loaded as the engine's train loader loads them: the same order
    and augmentation draws for every model of the round."""
    from torch.utils.data import DataLoader, RandomSampler

    from gsf.data.datasets import collate_clips
    from gsf.engine.loaders import epoch_seed, seed_worker

    generator = torch.Generator().manual_seed(epoch_seed(s.seed, round_index))
    return DataLoader(dataset, batch_size=s.batch, sampler=RandomSampler(dataset, generator=generator),
                      num_workers=s.workers, collate_fn=collate_clips, worker_init_fn=seed_worker,
                      generator=generator, pin_memory=s.device == "cuda")


class _Model:
    """One model under training: the bare model, what the loop calls (it, or it compiled), its optimizer."""

    def __init__(self, temporal: str, s: Settings):
        from gsf.engine.config import OptimConfig
        from gsf.engine.evaluate import compile_model
        from gsf.engine.trainer import make_optimizer
        from gsf.models.registry import build_model
        from gsf.ops import GateShiftFuse, path_for_device, set_gsf_path

        torch.manual_seed(s.seed)
        self.temporal = temporal
        self.model = build_model(backbone=s.backbone, temporal=temporal, num_classes=s.num_classes,
                                 num_frames=s.frames).to(s.device)
        self.model.train()
        if not s.compile:
            self.forward, self.mode = self.model, "eager"
        elif s.compile_backend == "inductor":
            self.forward, self.mode = compile_model(self.model, True), "compile"
        else:  # the engine's settings (composed GSF path, one graph, fixed shapes) with another backend
            set_gsf_path(self.model, "composed")
            self.forward = torch.compile(self.model, backend=s.compile_backend, fullgraph=True, dynamic=False)
            self.mode = f"compile ({s.compile_backend})"
        paths = {path_for_device(s.device) if m.path == "auto" else m.path
                 for m in self.model.modules() if isinstance(m, GateShiftFuse)}
        self.gsf_path = "/".join(sorted(paths))  # "" for the kinds without GSF modules
        optim = OptimConfig()
        self.clip_grad_norm = optim.clip_grad_norm
        self.optimizer = make_optimizer(self.model.parameters(), optimizer=optim.optimizer, lr=optim.lr,
                                        momentum=optim.momentum, weight_decay=optim.weight_decay)


def train_epoch(model: _Model, loader, device: str) -> dict[str, float]:
    """One epoch of ``model`` over ``loader``: the seconds of each phase (summed over steps), the epoch's wall
    time (``epoch_s``, the loader's start and shut-down included), the rest (``other_s``) and the steps."""
    from gsf.engine.trainer import loss_fn

    totals = dict.fromkeys(PHASES, 0.0)
    steps = 0
    _sync(device)
    start = last = time.perf_counter()

    def lap(phase: str) -> None:
        nonlocal last
        _sync(device)
        now = time.perf_counter()
        totals[phase] += now - last
        last = now

    iterator = iter(loader)
    for batch in iterator:
        lap("wait_data_s")
        x = batch["video"].to(device, non_blocking=True)
        y = batch["label"].to(device, non_blocking=True)
        lap("h2d_s")
        loss = loss_fn(model.forward(x), y)
        lap("forward_s")
        loss.backward()
        lap("backward_s")
        if model.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.model.parameters(), model.clip_grad_norm)
        model.optimizer.step()
        model.optimizer.zero_grad(set_to_none=True)
        lap("optim_s")
        steps += 1
    del iterator  # shuts the workers down
    _sync(device)
    epoch_s = time.perf_counter() - start
    return totals | {"epoch_s": epoch_s, "other_s": epoch_s - sum(totals.values()), "steps": steps}


def loader_split(dataset) -> dict[str, float]:
    """Per clip, in ms, the data set's decoding (``load_frames``), its augmentation (``transform``) and the
    whole item (``__getitem__``), over every clip of ``dataset`` in the main process with one torch thread, as
    one loader worker runs them. The two are wrapped with clocks on a shallow copy of ``dataset``, so the
    item is built by the data set's own code and ``dataset`` itself is left as it was."""
    import copy

    timed = copy.copy(dataset)
    spent = {"decode": 0.0, "augment": 0.0}

    def clocked(name, function):
        def call(*args):
            start = time.perf_counter()
            try:
                return function(*args)
            finally:
                spent[name] += time.perf_counter() - start
        return call

    timed.load_frames = clocked("decode", dataset.load_frames)
    if dataset.transform is not None:
        timed.transform = clocked("augment", dataset.transform)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        for index in range(len(timed)):
            timed[index]
        item = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    n = len(timed)
    return {"decode_ms_per_clip": 1e3 * spent["decode"] / n, "augment_ms_per_clip": 1e3 * spent["augment"] / n,
            "item_ms_per_clip": 1e3 * item / n}


def _row(model: _Model, epochs: list[dict], splits: list[dict], *, warmup_s: float, compile_s: float | None,
         s: Settings, threads: int) -> dict:
    """A model's row: the phases of its median epoch, its epochs' wall times, and the loader split of its
    median pass (by the whole item's time), so that each of the two sets of figures comes from one
    measurement and its parts add up."""
    epoch = median_pass(epochs, "epoch_s")
    split = median_pass(splits, "item_ms_per_clip")
    item = split["item_ms_per_clip"]
    return {
        "model": f"{s.backbone}_{'tsn' if model.temporal == 'none' else model.temporal}", "backbone": s.backbone,
        "temporal": model.temporal, "gsf_path": model.gsf_path, "mode": model.mode, "device": s.device,
        "frames": s.frames, "input_px": s.size, "batch": s.batch, "clips": s.clips, "steps": epoch["steps"],
        "threads": threads, "workers": s.workers, "epoch_s": round(epoch["epoch_s"], 3),
        "clips_per_s": round(s.clips / epoch["epoch_s"], 2),
        **{phase: round(epoch[phase], 3) for phase in PHASES}, "other_s": round(epoch["other_s"], 3),
        "epochs_s": "/".join(f"{e['epoch_s']:.3f}" for e in epochs), "ratio_epoch": None, "ratio_compute": None,
        "warmup_epoch_s": round(warmup_s, 2), "compile_s": None if compile_s is None else round(compile_s, 2),
        "decode_ms_per_clip": round(split["decode_ms_per_clip"], 2),
        "augment_ms_per_clip": round(split["augment_ms_per_clip"], 2), "item_ms_per_clip": round(item, 2),
        "decode_share": round(split["decode_ms_per_clip"] / item, 3) if item else None,
        "augment_share": round(split["augment_ms_per_clip"] / item, 3) if item else None,
    }


def compute_s(row: dict) -> float:
    """A row's forward, backward and optimizer seconds."""
    return row["forward_s"] + row["backward_s"] + row["optim_s"]


def add_ratios(rows: list[dict]) -> None:
    """Each row's median epoch, and its compute (forward + backward + optimizer), over TSN's: of the figures the
    rows show."""
    base = next(r for r in rows if r["temporal"] == "none")
    for row in rows:
        row["ratio_epoch"] = round(row["epoch_s"] / base["epoch_s"], 3)
        row["ratio_compute"] = round(compute_s(row) / compute_s(base), 3)


def _machine(device: str) -> str:
    from gsf.provenance import cpu_name

    cpu = f"CPU {cpu_name()}, {os.cpu_count()} logical cores"
    return f"GPU {torch.cuda.get_device_name()} ({cpu})" if device == "cuda" else cpu


def conditions(s: Settings, *, threads: int, seconds: float) -> str:
    """The header line of the table: machine, versions, settings, load average at the end."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    compiled = f"torch.compile ({s.compile_backend}, dynamic=False, composed GSF path)" if s.compile else "eager"
    return (f"{_machine(s.device)}; torch {torch.__version__}, torch threads {threads} in the training loop "
            f"(1 in each loader worker); {s.workers} loader workers; {s.backbone}, {compiled}; {s.clips} clips "
            f"an epoch, {s.frames} frames, {s.size} px (train augmentation from {s.video_size} px, "
            f"{s.video_frames}-frame WebM videos), batch {s.batch}; 1 warm-up epoch, median of {s.repeats} "
            f"timed epochs, models interleaved epoch by epoch; {date.today().isoformat()}; {seconds:.0f} s in all; "
            f"load average at the end {'/'.join(f'{v:.2f}' for v in load) if load else 'n/a'}")


HEADER_NOTE = (
    "Training loop (main process), seconds of the median epoch: `wait_data_s` waiting for the next batch, "
    "`h2d_s` host-to-device copy, `forward_s` forward and loss, `backward_s`, `optim_s` clipping, SGD step and "
    "zero_grad (the workers' start-up is in the first wait); `other_s` the loader's end: its last, empty fetch "
    "and its shut-down. "
    "`ratio_epoch` and `ratio_compute` (forward + backward + optimizer) are over TSN's. Loader, per clip, "
    "measured in a separate pass with 0 workers and 1 thread: `decode_ms_per_clip` (the video read), "
    "`augment_ms_per_clip` (the transforms), `item_ms_per_clip` (the whole item), shares of one worker's time "
    "per item. The loader workers run them in parallel with the training loop, so they cost wall time only "
    "where `wait_data_s` is large."
)


def file_stem(s: Settings, threads: int) -> str:
    """``train-epoch-<conditions tag>``: the tag of ``gsf bench model``'s files, and the loader workers."""
    from gsf.bench.model import conditions_tag

    modes = ("compile",) if s.compile else ("eager",)
    tag = conditions_tag(device=s.device, dtype="float32", channels_last=False, modes=modes, threads=threads)
    return f"train-epoch-{tag}-w{s.workers}"


def _write(rows: list[dict], out_dir: Path, stem: str, header: str) -> None:
    path = write_table(rows, columns=COLUMNS, out_dir=out_dir, stem=stem, title="Training epoch end to end",
                       preamble=[header, HEADER_NOTE])
    print(f"wrote {path}.csv and .md")


def _print(rows: list[dict], header: str) -> None:
    print(header)
    print(f"{'model':20s} {'epoch_s':>8s} {'clips/s':>8s} {'wait':>7s} {'h2d':>6s} {'fwd':>7s} {'bwd':>7s} "
          f"{'optim':>6s} {'ratio':>6s} {'r_comp':>6s} {'decode':>7s} {'augment':>7s}")
    for r in rows:
        print(f"{r['model']:20s} {r['epoch_s']:8.2f} {r['clips_per_s']:8.2f} {r['wait_data_s']:7.2f} "
              f"{r['h2d_s']:6.2f} {r['forward_s']:7.2f} {r['backward_s']:7.2f} {r['optim_s']:6.2f} "
              f"{r['ratio_epoch']:6.3f} {r['ratio_compute']:6.3f} {r['decode_ms_per_clip']:6.1f}ms "
              f"{r['augment_ms_per_clip']:6.1f}ms")


@contextlib.contextmanager
def _compile_settings(enabled: bool):
    """As the engine trains compiled: torch's limit on graphs per compiled function raised, and reaching it an
    error (:data:`gsf.engine.trainer.RECOMPILE_LIMIT`); graphs left from earlier in the process dropped, so the
    warm-up compiles afresh."""
    if not enabled:
        yield
        return
    from gsf.engine.trainer import RECOMPILE_LIMIT

    torch._dynamo.reset()
    with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT, fail_on_recompile_limit_hit=True):
        yield


def _progress(start: float, message: str) -> None:
    print(f"[{time.perf_counter() - start:7.1f} s] {message}", flush=True)


def bench_train(settings: Settings | None = None, *, out_dir: str | os.PathLike | None = "results/benchmarks",
                **kwargs) -> list[dict]:
    """Time a warm-up and ``repeats`` training epochs of every model, interleaved, and the loader's decode and
    augment per clip; print the table and write it as CSV and Markdown under ``out_dir`` (``None``: do not
    write). ``kwargs`` are fields of :class:`Settings` (or give ``settings``). Returns the rows, TSN first."""
    from gsf.engine.trainer import CompileClock

    s = replace(settings or Settings(), **kwargs)
    s = replace(s, temporal=models_of(s.temporal))
    check_settings(s)
    previous_threads = torch.get_num_threads()
    if s.threads is not None:
        torch.set_num_threads(s.threads)
    threads = torch.get_num_threads()
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="gsf-bench-train-") as tmp, _compile_settings(s.compile):
            _write_videos(Path(tmp), s)
            dataset = _dataset(Path(tmp), s)
            _progress(start, f"synthetic videos written, {len(dataset)} clips an epoch; building {len(s.temporal)} models")
            models = [_Model(kind, s) for kind in s.temporal]
            warmup: dict[str, float] = {}
            compiled: dict[str, float | None] = {}
            for model in models:  # warm-up epoch, untimed: the loader's first files, compilation
                with CompileClock() as clock:
                    warmup[model.temporal] = train_epoch(model, _loader(dataset, s, 0), s.device)["epoch_s"]
                compiled[model.temporal] = clock.seconds if s.compile else None
                _progress(start, f"{model.temporal}: warm-up epoch {warmup[model.temporal]:.1f} s"
                                 + (f" ({clock.seconds:.1f} s compiling)" if s.compile else ""))
            epochs: dict[str, list[dict]] = {m.temporal: [] for m in models}
            splits: dict[str, list[dict]] = {m.temporal: [] for m in models}
            for round_index in range(1, s.repeats + 1):  # interleaved: every model once a round
                for model in models:
                    epochs[model.temporal].append(train_epoch(model, _loader(dataset, s, round_index), s.device))
                    splits[model.temporal].append(loader_split(dataset))
                    _progress(start, f"round {round_index}/{s.repeats} {model.temporal}: "
                                     f"{epochs[model.temporal][-1]['epoch_s']:.1f} s")
            rows = [_row(m, epochs[m.temporal], splits[m.temporal], warmup_s=warmup[m.temporal],
                         compile_s=compiled[m.temporal], s=s, threads=threads) for m in models]
            add_ratios(rows)
    finally:
        torch.set_num_threads(previous_threads)
    header = conditions(s, threads=threads, seconds=time.perf_counter() - start)
    _print(rows, header)
    if out_dir is not None:
        _write(rows, Path(out_dir), file_stem(s, threads), header)
    return rows


def configure_parser(parser) -> None:
    """Arguments of ``gsf bench train``."""
    d = Settings()
    parser.add_argument("--backbone", default=d.backbone, help="backbone (default %(default)s)")
    parser.add_argument("--temporal", nargs="+", default=list(d.temporal),
                        help="temporal kinds to time (TSN, none, is always timed first, the ratio baseline; "
                             "default %(default)s)")
    parser.add_argument("--frames", type=int, default=d.frames, help="frames a clip (default %(default)s)")
    parser.add_argument("--size", type=int, default=d.size, help="input size in px (default %(default)s)")
    parser.add_argument("--batch", type=int, default=d.batch, help="clips a step (default %(default)s)")
    parser.add_argument("--workers", type=int, default=d.workers, help="loader workers (default %(default)s)")
    parser.add_argument("--clips", type=int, default=d.clips, help="clips an epoch (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=d.repeats,
                        help="timed epochs of each model, interleaved (median reported; default %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the training loop")
    parser.add_argument("--device", default=d.device, help="cpu or cuda (default %(default)s)")
    parser.add_argument("--compile", action="store_true",
                        help="train the models under torch.compile (as runtime.compile=true trains them)")
    parser.add_argument("--compile-backend", default=d.compile_backend,
                        help="torch.compile backend (inductor; eager/aot_eager to check the code path quickly)")
    parser.add_argument("--video-size", type=int, default=d.video_size,
                        help="side of the synthetic videos in px (default %(default)s)")
    parser.add_argument("--video-frames", type=int, default=d.video_frames,
                        help="frames of each synthetic video (default %(default)s)")
    parser.add_argument("--out", default="results/benchmarks", help="folder for the CSV and Markdown table")


def run(args) -> int:
    bench_train(Settings(backbone=args.backbone, temporal=tuple(args.temporal), frames=args.frames, size=args.size,
                         batch=args.batch, workers=args.workers, clips=args.clips, repeats=args.repeats,
                         threads=args.threads, device=args.device, compile=args.compile,
                         compile_backend=args.compile_backend, video_size=args.video_size,
                         video_frames=args.video_frames),
                out_dir=args.out)
    return 0
