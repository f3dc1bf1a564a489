"""``gsf bench fingerprint``: what the data fingerprint of a run costs (:mod:`gsf.data.fingerprint`: the
annotation files read and hashed, every sample listed and stat'ed, no video byte read).

The data are written for the purpose in a temporary folder and removed after: files of a hundred bytes in
the release layouts of docs/data-formats.md, in two shapes,

- ``ssv2-videos``: one video file a sample in one Something-Something V2 folder, listed in ``train.json``;
- ``ssv1-frames``: frame folders of ``--frames-per-folder`` JPEG files, Something-Something V1 layout;

and, for the frame folders, the fingerprint read back from a run folder's cache
(:func:`gsf.data.fingerprint.cached_fingerprint`). Each is timed ``--repeats`` times (the median is
reported) as the process's CPU time and the wall time; the first call of each shape is untimed, so the
file system's metadata is in the page cache, as it is for a data set a run reads again.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from gsf.bench.table_files import write_table
from gsf.data.fingerprint import cached_fingerprint, fingerprint_dataset
from gsf.provenance import cpu_name

CLASSES = ("Pushing something from left to right", "Pushing something from right to left", "Holding something")
SPLITS = ["train", "val"]
FILE_BYTES = 100
VAL_SAMPLES = 100  # the validation split: the first samples again, listed in the validation file


def write_ssv2_videos(root: Path, num_samples: int) -> None:
    """``num_samples`` videos of :data:`FILE_BYTES` bytes under ``root`` in the SSv2 layout."""
    videos = root / "20bn-something-something-v2"
    videos.mkdir(parents=True)
    payload = b"\0" * FILE_BYTES
    entries = []
    for i in range(num_samples):
        (videos / f"{i}.webm").write_bytes(payload)
        name = CLASSES[i % len(CLASSES)]
        entries.append({"id": str(i), "label": name, "template": name.replace("something", "[something]"),
                        "placeholders": []})
    labels = root / "labels"
    labels.mkdir()
    (labels / "labels.json").write_text(json.dumps({name: str(k) for k, name in enumerate(CLASSES)}))
    (labels / "train.json").write_text(json.dumps(entries))
    (labels / "validation.json").write_text(json.dumps(entries[:VAL_SAMPLES]))


def write_ssv1_frames(root: Path, num_files: int, frames_per_folder: int) -> None:
    """Frame folders holding ``num_files`` JPEG files of :data:`FILE_BYTES` bytes in all, SSv1 layout."""
    frames = root / "20bn-something-something-v1"
    payload = b"\0" * FILE_BYTES
    rows = []
    for i in range(max(1, num_files // frames_per_folder)):
        folder = frames / str(i)
        folder.mkdir(parents=True)
        for k in range(1, frames_per_folder + 1):
            (folder / f"{k:05d}.jpg").write_bytes(payload)
        rows.append(f"{i};{CLASSES[i % len(CLASSES)]}")
    (root / "something-something-v1-labels.csv").write_text("\n".join(sorted(CLASSES)) + "\n")
    (root / "something-something-v1-train.csv").write_text("\n".join(rows) + "\n")
    (root / "something-something-v1-validation.csv").write_text("\n".join(rows[:VAL_SAMPLES]) + "\n")


def _timed(call, repeats: int) -> tuple[float, float, object]:
    """Median CPU and wall seconds of ``repeats`` calls after one untimed call; the last call's result."""
    result = call()
    cpu, wall = [], []
    for _ in range(repeats):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = call()
        cpu.append(time.process_time() - cpu0)
        wall.append(time.perf_counter() - wall0)
    return statistics.median(cpu), statistics.median(wall), result


def bench_fingerprint(*, num_files: int, frames_per_folder: int, repeats: int) -> list[dict]:
    """One row per case: its layout, samples and files, CPU and wall seconds (medians), the digest."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="gsf-bench-fingerprint-") as tmp:
        ssv2, ssv1, run_folder = Path(tmp) / "ssv2", Path(tmp) / "ssv1", Path(tmp) / "run"
        write_ssv2_videos(ssv2, num_files)
        write_ssv1_frames(ssv1, num_files, frames_per_folder)
        cases = [
            ("ssv2-videos", "fresh", ssv2, lambda: fingerprint_dataset("ssv2", ssv2, SPLITS)),
            ("ssv1-frames", "fresh", ssv1, lambda: fingerprint_dataset("ssv1", ssv1, SPLITS)),
            ("ssv1-frames", "cached in the run folder", ssv1,
             lambda: cached_fingerprint(run_folder, "ssv1", ssv1, SPLITS)),
        ]
        for layout, how, root, call in cases:
            cpu, wall, found = _timed(call, repeats)
            files = sum(1 for _ in root.rglob("*") if _.is_file())
            rows.append({"layout": layout, "fingerprint": how, "train_samples": found.num_samples("train"),
                         "val_samples": found.num_samples("val"), "files_under_root": files,
                         "cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "digest": found.digest})
    return rows


def _write(rows: list[dict], out_dir: Path, conditions: str) -> Path:
    return write_table(rows, columns=list(rows[0]), out_dir=out_dir, stem=f"fingerprint-cpu{os.cpu_count()}",
                       title="Data fingerprint cost", preamble=[conditions])


def configure_parser(parser) -> None:
    parser.add_argument("--files", type=int, default=100_000,
                        help="sample files of each layout: videos, or frame files in all (default %(default)s)")
    parser.add_argument("--frames-per-folder", type=int, default=50, help="frame files a folder (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls a case, median reported (default %(default)s)")
    parser.add_argument("--out", default=None, help="folder for the CSV and Markdown table (default: print only)")


def run(args) -> int:
    from gsf.errors import GSFConfigError

    for name in ("files", "frames_per_folder", "repeats"):
        if getattr(args, name) < 1:
            raise GSFConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    started = time.perf_counter()
    rows = bench_fingerprint(num_files=args.files, frames_per_folder=args.frames_per_folder, repeats=args.repeats)
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    conditions = (f"CPU {cpu_name()}, {os.cpu_count()} logical cores; {args.files} files of {FILE_BYTES} bytes a "
                  f"layout in a temporary folder, page cache warm; median of {args.repeats} calls after one "
                  f"untimed; {time.perf_counter() - started:.0f} s in all; load average at the end {load}")
    print(conditions)
    for row in rows:
        print(", ".join(f"{k}={v}" for k, v in row.items()))
    if args.out:
        stem = _write(rows, Path(args.out), conditions)
        print(f"wrote {stem}.csv and .md")
    return 0
