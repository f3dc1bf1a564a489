"""Data-loading throughput: clips per second from frame folders and from videos, with 0 and 2 loader
workers, at 8 and 16 frames, with the release's train augmentation (docs/recipe.md).

The data are the synthetic benchmark made on the fly in a temporary folder: SSv2-format WebM videos,
and the same frames as an SSv1-format JPEG folder tree.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.io import encode_jpeg, write_file

from gsf.bench.table_files import write_table
from gsf.data.datasets import build_dataset, collate_clips
from gsf.data.io import VideoFile
from gsf.provenance import cpu_name


def _as_ssv1(ssv2_root: Path, ssv1_root: Path) -> None:
    """Write the SSv2-format synthetic set again as SSv1 JPEG frame folders (same frames, same labels)."""
    import json

    labels = json.loads((ssv2_root / "labels.json").read_text())
    names = sorted(labels)
    ssv1_root.mkdir(parents=True, exist_ok=True)
    (ssv1_root / "something-something-v1-labels.csv").write_text("\n".join(names) + "\n")
    rows = []
    for entry in json.loads((ssv2_root / "train.json").read_text()):
        folder = ssv1_root / "20bn-something-something-v1" / entry["id"]
        folder.mkdir(parents=True, exist_ok=True)
        with VideoFile(ssv2_root / "20bn-something-something-v2" / f"{entry['id']}.webm") as video:
            frames = video.frames(range(video.num_frames))
        for i, frame in enumerate(frames, start=1):
            write_file(str(folder / f"{i:05d}.jpg"), encode_jpeg(frame, quality=90))
        rows.append(f"{entry['id']};{entry['label']}")
    (ssv1_root / "something-something-v1-train.csv").write_text("\n".join(rows) + "\n")


def _clips_per_second(dataset, *, workers: int, batch_size: int, min_seconds: float) -> tuple[float, int]:
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, collate_fn=collate_clips,
        persistent_workers=workers > 0, drop_last=False,
    )
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start, first files
    clips, start = 0, time.perf_counter()
    while True:
        for batch in iterator:
            clips += len(batch["video_id"])
            if time.perf_counter() - start >= min_seconds:
                break
        if time.perf_counter() - start >= min_seconds:
            break
        iterator = iter(loader)
    return clips / (time.perf_counter() - start), clips


def bench_data(
    *,
    frames: tuple[int, ...] = (8, 16),
    workers: tuple[int, ...] = (0, 2),
    sources: tuple[str, ...] = ("frames", "video"),
    input_size: int = 112,
    video_size: int = 128,
    video_frames: int = 48,
    num_classes: int = 10,
    videos_per_class: int = 6,
    batch_size: int = 8,
    min_seconds: float = 4.0,
    out_dir: str | os.PathLike | None = "results/benchmarks",
    seed: int = 0,
) -> list[dict]:
    """Measure train-mode loading throughput; print a table and write it as CSV and Markdown under
    ``out_dir`` (``None``: do not write). Returns the rows."""
    from gsf.data.synth import synthesize_dataset

    threads = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gsf-bench-data-") as tmp:
        ssv2 = Path(tmp) / "ssv2"
        synthesize_dataset(
            ssv2, num_classes=num_classes, videos_per_class=videos_per_class, num_frames=video_frames,
            size=video_size, seed=seed, val_fraction=0.2,
        )
        ssv1 = Path(tmp) / "ssv1"
        if "frames" in sources:
            _as_ssv1(ssv2, ssv1)
        for source in sources:
            name, root = ("ssv1", ssv1) if source == "frames" else ("ssv2", ssv2)
            for num_frames in frames:
                dataset = build_dataset(
                    name, root, "train", num_frames=num_frames, mode="train", input_size=input_size
                )
                for num_workers in workers:
                    torch.manual_seed(seed)
                    rate, clips = _clips_per_second(
                        dataset, workers=num_workers, batch_size=batch_size, min_seconds=min_seconds
                    )
                    rows.append({
                        "source": f"{source} ({'JPEG folders' if source == 'frames' else 'WebM VP8'})",
                        "num_frames": num_frames,
                        "loader_workers": num_workers,
                        "clips_per_s": round(rate, 1),
                        "frames_per_s": round(rate * num_frames, 1),
                        "clips_timed": clips,
                    })
                    print(f"{rows[-1]['source']:24s} T={num_frames:<3d} workers={num_workers}  "
                          f"{rate:8.1f} clips/s")
    conditions = (
        f"CPU: {cpu_name()}, {os.cpu_count()} logical cores, torch threads {threads}; "
        f"train augmentation (RandAugment, multi-scale crop, flip) to {input_size}x{input_size}, "
        f"source {video_size}x{video_size} px, {video_frames}-frame videos, batch {batch_size}; "
        f"torch {torch.__version__}"
    )
    print(conditions)
    if out_dir is not None:
        _write(rows, Path(out_dir), conditions, input_size)
    return rows


def _write(rows: list[dict], out_dir: Path, conditions: str, input_size: int) -> None:
    stem = f"data-loading-train-{input_size}px-cpu{os.cpu_count()}-torch{torch.__version__.split('+')[0]}"
    path = write_table(rows, columns=list(rows[0]), out_dir=out_dir, stem=stem, title="Data-loading throughput",
                       preamble=[conditions])
    print(f"wrote {path}.csv and .md")


def configure_parser(parser) -> None:
    """Arguments of ``gsf bench data``."""
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16], help="clip lengths T")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts")
    parser.add_argument("--input-size", type=int, default=112, help="crop size after augmentation")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per configuration")
    parser.add_argument("--out", default="results/benchmarks", help="folder for the CSV and Markdown table")


def run(args) -> int:
    bench_data(
        frames=tuple(args.frames), workers=tuple(args.workers), input_size=args.input_size,
        min_seconds=args.seconds, out_dir=args.out,
    )
    return 0
