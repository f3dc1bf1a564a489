"""The identity of the data a run reads: a fingerprint that changes when the data change and not when the
data set's folder is moved or renamed.

A :class:`DataFingerprint` holds, per split the run reads: the SHA-256 of each annotation file the reader
reads (the split file and the class-name files), relative to the root; the number of samples; and a digest
over each sample's path (relative to the root) and size in bytes, a frame folder counting as its number of
files and their total size. Its :attr:`~DataFingerprint.digest` hashes all of that but the root, so a copy
of the same data elsewhere has the same digest, while one changed label, one added or removed sample or one
truncated frame folder gives another.

Cost: annotation files are read and hashed (they are small); samples are only listed and stat'ed (no video
byte is read, nothing is decoded); for videos listed in a split file, the reader's parsing of that file, which
a training run does anyway, is most of it; a cold cache or a network file system costs one metadata round
trip per sample. The measured figures are in results/benchmarks/README.md ("Data fingerprint").

:func:`cached_fingerprint` keeps the fingerprint in a JSON file of the run's own folder (never the data set's,
which may be read-only) with a stamp of what it was computed from: the data set, the resolved root, the
splits, and the size and modification time of each annotation file and each folder holding samples. While
the stamp holds, the file is reused and no sample is stat'ed; adding, removing or renaming a sample changes
its folder's time. A video rewritten in place under the same name leaves its folder's time alone: only a
fresh fingerprint (``refresh=True``, or :func:`fingerprint_dataset`) sees that, which is why a resumed sweep
compares fresh fingerprints (``experiments.runner``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from gsf.data import readers
from gsf.data.records import FRAMES, VideoRecord
from gsf.errors import GSFConfigError, GSFDataError

FINGERPRINT_FILE = "data_fingerprint.json"  # in a run's folder
DIGEST_LENGTH = 16  # hex characters of SHA-256 kept: 64 bits, and within MLflow's dataset digest column
_SOURCE = re.compile(r"^(?P<file>.*?)(?::\d+|\[\d+\])$")  # VideoRecord.source: "<file>:<row>" or "<file>[<row>]"
_CHUNK = 1 << 20
_MAX_NAMED = 5  # changed samples named in a message


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError as err:
        raise GSFDataError(f"annotation file {path} cannot be read: {err}") from err
    return digest.hexdigest()


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX separators), or as given when it lies outside the root."""
    text, prefix = str(path), str(root).rstrip(os.sep) + os.sep
    if text.startswith(prefix):  # how readers build paths (root / ...): no normalisation needed
        return text[len(prefix):].replace(os.sep, "/")
    try:
        relative = Path(os.path.relpath(path, root))
    except ValueError:  # another drive
        return str(path)
    return str(path) if relative.parts[:1] == ("..",) else relative.as_posix()


def _entry(record: VideoRecord, root: Path) -> tuple[str, int, int]:
    """``(path relative to root, bytes, files)`` of one sample: a missing one counts as -1 bytes, 0 files."""
    name = _relative(record.path, root)
    if record.kind == FRAMES:
        try:
            with os.scandir(record.path) as entries:
                sizes = [e.stat().st_size for e in entries if e.is_file()]
        except OSError:
            return name, -1, 0
        return name, sum(sizes), len(sizes)
    try:
        return name, os.stat(record.path).st_size, 1
    except OSError:
        return name, -1, 0


@dataclass(frozen=True)
class SplitFingerprint:
    """One split: ``files`` maps each annotation file read (relative to the root) to its SHA-256;
    ``entries`` lists ``(sample path relative to the root, bytes, files)`` in annotation order."""

    split: str
    files: dict[str, str]
    entries: tuple[tuple[str, int, int], ...]

    @property
    def num_samples(self) -> int:
        return len(self.entries)

    @cached_property  # a Kinetics-size split has 10^5 entries; the instance is frozen
    def samples_digest(self) -> str:
        digest = hashlib.sha256()
        for name, size, count in self.entries:
            digest.update(f"{name}\0{size}\0{count}\n".encode())
        return digest.hexdigest()[:DIGEST_LENGTH]

    @property
    def num_bytes(self) -> int:
        return sum(max(size, 0) for _, size, _ in self.entries)

    def summary(self) -> dict:
        return {"files": dict(self.files), "num_samples": self.num_samples, "samples_digest": self.samples_digest}


@dataclass(frozen=True)
class DataFingerprint:
    """What a run reads of data set ``dataset`` under ``root`` (as given): one :class:`SplitFingerprint` per
    split, in the order given."""

    dataset: str
    root: str
    splits: dict[str, SplitFingerprint]
    max_videos: int | None = None
    stamp: dict = field(default_factory=dict, compare=False)

    @cached_property
    def digest(self) -> str:
        """SHA-256 (first :data:`DIGEST_LENGTH` hex characters) of everything but the root."""
        body = {"dataset": self.dataset, "max_videos": self.max_videos,
                "splits": {name: split.summary() for name, split in self.splits.items()}}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:DIGEST_LENGTH]

    def num_samples(self, split: str) -> int:
        return self.splits[split].num_samples

    def describe(self) -> str:
        """One line: data set, root, samples per split, digest."""
        counts = ", ".join(f"{name} {split.num_samples} samples" for name, split in self.splits.items())
        limit = f" (first {self.max_videos} of each split)" if self.max_videos is not None else ""
        return f"data {self.dataset} under {self.root}: {counts}{limit}; digest {self.digest}"

    def summary(self) -> dict:
        """Plain values without the per-sample entries (what a sweep's state and an MLflow profile keep)."""
        return {"dataset": self.dataset, "root": self.root, "digest": self.digest, "max_videos": self.max_videos,
                "splits": {name: split.summary() for name, split in self.splits.items()}}

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "root": self.root, "max_videos": self.max_videos, "digest": self.digest,
                "stamp": self.stamp,
                "splits": {name: {"files": s.files, "entries": [list(e) for e in s.entries]}
                           for name, s in self.splits.items()}}

    @classmethod
    def from_dict(cls, data: Mapping) -> DataFingerprint:
        splits = {name: SplitFingerprint(name, dict(s["files"]), tuple((str(a), int(b), int(c)) for a, b, c in s["entries"]))
                  for name, s in data["splits"].items()}
        return cls(str(data["dataset"]), str(data["root"]), splits, data.get("max_videos"), dict(data.get("stamp") or {}))


def _read_split(dataset: str, root: Path, split: str, frame_template: str | None,
                num_classes: int | None) -> tuple[list[VideoRecord], list[Path]]:
    """The records of ``split`` and the annotation files read for them (split file first, class files after)."""
    if dataset == "list":
        list_file = Path(split) if Path(split).is_absolute() else root / split
        records, _ = readers.read_tsn_list(list_file, root, frame_template=frame_template or "{:05d}.jpg",
                                           num_classes=num_classes)
        return records, [list_file]
    if dataset not in readers.READERS:
        raise GSFConfigError(f"unknown data set {dataset!r}; choose from {sorted(readers.READERS) + ['list']}")
    records, _ = readers.READERS[dataset](root, split)
    files: list[Path] = []
    for record in records[:1]:
        match = _SOURCE.match(record.source)
        if match:
            files.append(Path(match["file"]))
    dirs = readers.EPIC_DIRS if dataset == "epic100" else readers.ANNOTATION_DIRS
    names = readers.LABEL_FILES[dataset]
    for group in ((n,) for n in names) if dataset == "epic100" else (names,):
        try:
            path = readers.find_file(root, group, dirs)
        except GSFDataError:  # optional class files (Diving48, EPIC): the reader fell back to numbered classes
            continue
        if path not in files:
            files.append(path)
    return records, files


def fingerprint_dataset(dataset: str, root, splits: Sequence[str], *, max_videos: int | None = None,
                        frame_template: str | None = None, num_classes: int | None = None) -> DataFingerprint:
    """A fresh fingerprint of ``splits`` of ``dataset`` under ``root`` (the first ``max_videos`` samples of each
    split, as a run with ``data.max_videos`` reads them). Reads the annotation files; stats the samples."""
    given = str(root)
    root = Path(root)
    if not root.is_dir():
        raise GSFDataError(f"data set root not found: {root}")
    out: dict[str, SplitFingerprint] = {}
    for split in dict.fromkeys(splits):
        records, files = _read_split(dataset, root, split, frame_template, num_classes)
        if max_videos is not None:
            records = records[:max_videos]
        out[split] = SplitFingerprint(split, {_relative(f, root): _sha256_file(f) for f in files},
                                      tuple(_entry(r, root) for r in records))
    return DataFingerprint(dataset, given, out, max_videos)


def _stamp(dataset: str, root: Path, splits: Sequence[str], max_videos: int | None, frame_template: str | None,
           num_classes: int | None) -> dict:
    """What a cached fingerprint was computed from: annotation files' size and time, sample folders' times."""

    def times(path: Path) -> list[int]:
        try:
            st = os.stat(path)
        except OSError:
            return [-1, -1]
        return [st.st_size, st.st_mtime_ns]

    annotation: dict[str, list[int]] = {}
    folders: dict[str, list[int]] = {}
    for split in dict.fromkeys(splits):
        records, files = _read_split(dataset, root, split, frame_template, num_classes)
        annotation.update({str(f): times(f) for f in files})
        for record in records[:max_videos] if max_videos is not None else records:
            folder = record.path if record.kind == FRAMES else record.path.parent
            key = str(folder)
            if key not in folders:
                folders[key] = times(folder)[1:]
    body = {"dataset": dataset, "root": str(root.resolve()), "splits": list(splits), "max_videos": max_videos,
            "annotation": annotation, "folders": folders}
    return {"key": hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()}


def cached_fingerprint(cache_dir, dataset: str, root, splits: Sequence[str], *, max_videos: int | None = None,
                       frame_template: str | None = None, num_classes: int | None = None,
                       refresh: bool = False) -> DataFingerprint:
    """The fingerprint of the data, kept in ``cache_dir / FINGERPRINT_FILE`` (a run's folder, created if need
    be) and reused while its stamp holds (see the module's docstring); ``refresh`` computes it afresh."""
    cache = Path(cache_dir) / FINGERPRINT_FILE
    path = Path(root)
    if not path.is_dir():
        raise GSFDataError(f"data set root not found: {path}")
    stamp = _stamp(dataset, path, splits, max_videos, frame_template, num_classes)
    if not refresh and cache.is_file():
        try:
            saved = DataFingerprint.from_dict(json.loads(cache.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError):
            saved = None  # an unreadable cache is recomputed
        if saved is not None and saved.stamp == stamp and saved.root == str(root):
            return saved
    fresh = fingerprint_dataset(dataset, root, splits, max_videos=max_videos, frame_template=frame_template,
                                num_classes=num_classes)
    fingerprint = DataFingerprint(fresh.dataset, fresh.root, fresh.splits, fresh.max_videos, stamp)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(fingerprint.to_dict()), encoding="utf-8")
    os.replace(tmp, cache)
    return fingerprint


def _entry_changes(split: str, old: Sequence, new: Sequence) -> list[str]:
    before = {e[0]: tuple(e[1:]) for e in old}
    after = {e[0]: tuple(e[1:]) for e in new}
    added = [n for n in after if n not in before]
    removed = [n for n in before if n not in after]
    changed = [n for n in after if n in before and after[n] != before[n]]
    out = []

    def names(items: list[str]) -> str:
        more = f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else ""
        return ", ".join(items[:_MAX_NAMED]) + more

    if added:
        out.append(f"{split}: {len(added)} sample(s) added ({names(added)})")
    if removed:
        out.append(f"{split}: {len(removed)} sample(s) removed ({names(removed)})")
    for name in changed[:_MAX_NAMED]:
        (b_size, b_files), (a_size, a_files) = before[name], after[name]
        what = f"{b_files} -> {a_files} files, " if b_files != a_files else ""
        out.append(f"{split}: sample {name} changed ({what}{b_size} -> {a_size} bytes)")
    if len(changed) > _MAX_NAMED:
        out.append(f"{split}: {len(changed) - _MAX_NAMED} more sample(s) changed")
    return out


def describe_changes(old: Mapping, new: DataFingerprint) -> list[str]:
    """What differs between a saved fingerprint ``old`` (:meth:`DataFingerprint.to_dict` with per-sample
    entries, or :meth:`~DataFingerprint.summary` without) and ``new``: annotation files changed, added or gone,
    sample counts, and (with entries) the samples added, removed or resized. Empty when the digests agree."""
    if old.get("digest") == new.digest:
        return []
    out = []
    if old.get("dataset") != new.dataset:
        out.append(f"data set {old.get('dataset')} -> {new.dataset}")
    if old.get("max_videos") != new.max_videos:
        out.append(f"data.max_videos {old.get('max_videos')} -> {new.max_videos}")
    for name, split in new.splits.items():
        before = (old.get("splits") or {}).get(name)
        if before is None:
            out.append(f"split {name} was not read before")
            continue
        for file, sha in split.files.items():
            if file not in before["files"]:
                out.append(f"{name}: annotation file {file} is new")
            elif before["files"][file] != sha:
                out.append(f"{name}: annotation file {file} changed (content hash {before['files'][file][:12]} -> "
                           f"{sha[:12]})")
        out += [f"{name}: annotation file {f} is no longer read" for f in before["files"] if f not in split.files]
        count = len(before["entries"]) if "entries" in before else before.get("num_samples")
        if count != split.num_samples:
            out.append(f"{name}: {count} -> {split.num_samples} samples")
        if "entries" in before:
            out += _entry_changes(name, before["entries"], split.entries)
        elif before.get("samples_digest") != split.samples_digest:
            out.append(f"{name}: the samples' files changed (names or sizes)")
    return out or ["the fingerprint's digest changed"]


def splits_read(train_split: str, val_split: str) -> list[str]:
    """The splits a training run reads, in order (one when training and validation share a split)."""
    return list(dict.fromkeys([train_split, val_split]))


def count_samples(dataset: str, root, split: str, *, max_videos: int | None = None) -> int:
    """Samples of ``split`` (annotation rows the reader accepts), without touching a sample."""
    records, _ = _read_split(dataset, Path(root), split, None, None)
    return min(len(records), max_videos) if max_videos is not None else len(records)


def record_schema(dataset: str) -> list[tuple[str, str]]:
    """``(field, type)`` of one record the run reads (:class:`gsf.data.records.VideoRecord`), for MLflow."""
    label = [("verb", "long"), ("noun", "long")] if dataset == "epic100" else [("label", "long")]
    return [("video_id", "string"), ("path", "string"), *label, ("kind", "string"), ("first_frame", "long"),
            ("num_frames", "long")]
