"""Check every sample of a data set before training: annotation fields, label range, file present,
decodable, enough frames. Each problem is reported with the file or annotation row it concerns."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gsf.data import readers
from gsf.data.io import END_TOLERANCE_FRAMES, VideoFile, count_frame_files, read_jpeg_frames
from gsf.data.records import FRAMES, VideoRecord
from gsf.errors import GSFConfigError, GSFDataError


@dataclass
class ValidationReport:
    dataset: str
    root: str
    split: str
    num_rows: int = 0
    num_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        state = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        return (
            f"{self.dataset} {self.split} under {self.root}: {self.num_checked} samples checked, "
            f"{self.num_rows} annotation rows, {state}"
        )


def check_record(record: VideoRecord, *, min_frames: int = 1, decode: bool = True) -> str | None:
    """``None`` if ``record`` reads correctly, else a message naming the file and the annotation row."""
    try:
        if record.kind == FRAMES:
            available = count_frame_files(record.path, record.frame_template)
            last = record.first_frame + (record.num_frames or available - record.first_frame + 1) - 1
            if available < last or available - record.first_frame + 1 < max(min_frames, 1):
                return (
                    f"{record.path}: too few frames: {available} present "
                    f"({record.frame_template.format(1)}...), needs frames {record.first_frame}..{max(last, min_frames)}"
                    f" ({record.source})"
                )
            if decode:
                read_jpeg_frames(record.path, record.frame_template, range(record.first_frame, last + 1))
        else:
            with VideoFile(record.path) as video:
                available = video.count_frames() if decode else video.num_frames
            needed = record.first_frame + (record.num_frames or 0)
            if available == 0:
                return f"{record.path}: no decodable frames (corrupt video) ({record.source})"
            if needed - available > END_TOLERANCE_FRAMES or available - record.first_frame < min_frames:
                return (
                    f"{record.path}: too few frames: decodes {available}, needs "
                    f"{max(needed, record.first_frame + min_frames)} ({record.source})"
                )
    except GSFDataError as err:
        return f"{err} ({record.source})"
    return None


def _check(args):
    record, min_frames, decode = args
    return check_record(record, min_frames=min_frames, decode=decode)


def validate_dataset(
    dataset: str,
    root,
    split: str = "train",
    *,
    min_frames: int = 1,
    decode: bool = True,
    workers: int = 0,
    frame_template: str | None = None,
    num_classes: int | None = None,
) -> ValidationReport:
    """Validate every annotation row and every sample of one split. For ``dataset="list"``, ``split`` is
    the list file (relative to ``root`` or absolute)."""
    report = ValidationReport(dataset, str(root), split)
    row_problems: list[str] = []
    try:
        if dataset == "list":
            list_file = Path(split) if Path(split).is_absolute() else Path(root) / split
            records, _ = readers.read_tsn_list(
                list_file, root, frame_template=frame_template,
                num_classes=num_classes, errors=row_problems,
            )
        elif dataset in readers.READERS:
            records, _ = readers.READERS[dataset](root, split, errors=row_problems)
        else:
            raise GSFConfigError(f"unknown data set {dataset!r}; choose from {sorted(readers.READERS) + ['list']}")
    except (GSFConfigError, GSFDataError) as err:  # a wrong name, split or annotation file: the report says so
        report.problems.append(str(err))
        return report
    report.problems += row_problems
    report.num_rows = len(records) + len(row_problems)
    jobs = [(r, min_frames, decode) for r in records]
    if workers > 0:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_check, jobs, chunksize=16))
    else:
        results = [_check(job) for job in jobs]
    report.num_checked = len(records)
    report.problems += [r for r in results if r is not None]
    return report
