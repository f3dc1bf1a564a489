"""Readers of the official release formats (docs/data-formats.md): annotation files -> :class:`VideoRecord`s.

Every reader takes the data set's root folder as released and returns ``(records, class_names)``.
A bad annotation row raises :class:`GSFDataError` naming the file and row, or, when an ``errors`` list is
given (validation), is appended to it and left out.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from gsf.data.records import FRAMES, VIDEO, VideoRecord
from gsf.errors import GSFConfigError, GSFDataError
from gsf.vocabulary import PUBLISHED_NUM_CLASSES

ANNOTATION_DIRS = ("", "labels", "annotations")
KNOWN_FRAME_TEMPLATES = (
    "{:05d}.jpg",  # SSv1
    "{:06d}.jpg",  # SSv2 frames
    "frame{:06d}.jpg",  # Diving48
    "img_{:05d}.jpg",  # Kinetics
    "frame_{:010d}.jpg",  # EPIC-Kitchens
)
# The class-name files each reader looks for (the first found is read; EPIC reads both of its own).
LABEL_FILES = {
    "ssv1": ("something-something-v1-labels.csv",),
    "ssv2": ("labels.json", "something-something-v2-labels.json"),
    "diving48": ("Diving48_vocab.json",),
    "kinetics400": ("train.csv",),
    "epic100": ("EPIC_100_verb_classes.csv", "EPIC_100_noun_classes.csv"),
}


def _bad(errors: list[str] | None, message: str) -> None:
    if errors is None:
        raise GSFDataError(message)
    errors.append(message)


def find_file(root: Path, names: tuple[str, ...], dirs: tuple[str, ...] = ANNOTATION_DIRS) -> Path:
    """First existing ``root / dir / name``; the error lists every place looked at."""
    tried = [root / d / n for d in dirs for n in names]
    for path in tried:
        if path.is_file():
            return path
    raise GSFDataError("annotation file not found; looked for: " + ", ".join(str(p) for p in tried))


def _check_root(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise GSFDataError(f"data set root not found: {root}")
    return root


def _split_name(split: str, names: dict[str, str], dataset: str) -> str:
    key = names.get(split)
    if key is None:
        raise GSFConfigError(f"{dataset}: unknown split {split!r}; choose from {sorted(names)}")
    return key


def _in_range(value: int, count: int) -> bool:
    return 0 <= value < count


# ---------------------------------------------------------------------------- Something-Something V1


def read_ssv1(root, split: str = "train", *, errors: list[str] | None = None):
    """SSv1: JPEG frames ``20bn-something-something-v1/<id>/00001.jpg``, ``something-something-v1-labels.csv``
    (one class a line) and ``-train.csv`` / ``-validation.csv`` (``<id>;<class name>``); the label is the
    index of the class in the sorted class list."""
    root = _check_root(root)
    part = _split_name(split, {"train": "train", "validation": "validation", "val": "validation"}, "ssv1")
    labels_file = find_file(root, LABEL_FILES["ssv1"])
    with open(labels_file, encoding="utf-8") as f:
        classes = sorted({line.strip() for line in f if line.strip()})
    index = {name: i for i, name in enumerate(classes)}
    split_file = find_file(root, (f"something-something-v1-{part}.csv",))
    frames_dir = root / "20bn-something-something-v1"
    records = []
    with open(split_file, encoding="utf-8") as f:
        for row, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split(";")
            where = f"{split_file}:{row}"
            if len(fields) < 2 or not fields[0].strip() or not fields[1].strip():
                _bad(errors, f"{where}: expected '<id>;<class name>', got {line.strip()!r} (missing field)")
                continue
            video_id, name = fields[0].strip(), fields[1].strip()
            if name not in index:
                _bad(errors, f"{where}: class {name!r} is not in {labels_file.name} (label out of range)")
                continue
            records.append(
                VideoRecord(video_id, frames_dir / video_id, index[name], where, FRAMES, 1, None, "{:05d}.jpg")
            )
    return records, classes


# ---------------------------------------------------------------------------- Something-Something V2


def ssv2_class_name(template: str) -> str:
    """The class of an SSv2 annotation: its template with ``[something]`` written ``something``."""
    return re.sub(r"\[([^\]]*)\]", r"\1", template).strip()


def read_ssv2(root, split: str = "train", *, errors: list[str] | None = None):
    """SSv2: videos ``20bn-something-something-v2/<id>.webm``; ``labels.json`` (``{"class": "index"}``),
    ``train.json`` / ``validation.json`` (lists of ``{"id", "label", "template", "placeholders"}``) in
    ``labels/`` or at the root, or the older ``something-something-v2-*.json`` names."""
    root = _check_root(root)
    part = _split_name(split, {"train": "train", "validation": "validation", "val": "validation"}, "ssv2")
    labels_file = find_file(root, LABEL_FILES["ssv2"])
    try:
        mapping = json.loads(labels_file.read_text(encoding="utf-8"))
        classes_by_index = {int(v): k for k, v in mapping.items()}
    except (json.JSONDecodeError, ValueError, AttributeError) as err:
        raise GSFDataError(f"{labels_file}: not a {{'class name': 'index'}} JSON object ({err})") from err
    if sorted(classes_by_index) != list(range(len(classes_by_index))):
        raise GSFDataError(f"{labels_file}: class indices are not 0..{len(classes_by_index) - 1}")
    classes = [classes_by_index[i] for i in range(len(classes_by_index))]
    index = {name: i for i, name in enumerate(classes)}
    split_file = find_file(root, (f"{part}.json", f"something-something-v2-{part}.json"))
    try:
        entries = json.loads(split_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise GSFDataError(f"{split_file}: invalid JSON ({err})") from err
    if not isinstance(entries, list):
        raise GSFDataError(f"{split_file}: expected a list of annotations")
    videos = root / "20bn-something-something-v2"
    records = []
    for row, entry in enumerate(entries):
        where = f"{split_file}[{row}]"
        if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
            _bad(errors, f"{where}: missing field 'id' or 'template' in {entry!r}")
            continue
        name = ssv2_class_name(str(entry["template"]))
        if name not in index:
            _bad(errors, f"{where}: class {name!r} is not in {labels_file.name} (label out of range)")
            continue
        video_id = str(entry["id"])
        records.append(VideoRecord(video_id, videos / f"{video_id}.webm", index[name], where, VIDEO))
    return records, classes


# ---------------------------------------------------------------------------- Diving48


def read_diving48(root, split: str = "train", *, errors: list[str] | None = None):
    """Diving48 (V2 labels): videos ``rgb/<vid_name>.mp4``; ``Diving48_V2_train.json`` /
    ``Diving48_V2_test.json`` (``{"vid_name", "label", "start_frame", "end_frame"}``; frames
    ``start_frame`` (0-based) up to ``end_frame`` (exclusive)); ``Diving48_vocab.json`` names the 48 classes."""
    root = _check_root(root)
    part = _split_name(split, {"train": "train", "test": "test", "val": "test", "validation": "test"}, "diving48")
    try:
        vocab_file = find_file(root, LABEL_FILES["diving48"])
        vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
        classes = [" ".join(v) if isinstance(v, list) else str(v) for v in vocab]
    except GSFDataError:
        classes = [f"class {i}" for i in range(PUBLISHED_NUM_CLASSES["diving48"])]
    split_file = find_file(root, (f"Diving48_V2_{part}.json",))
    try:
        entries = json.loads(split_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise GSFDataError(f"{split_file}: invalid JSON ({err})") from err
    records = []
    fields = ("vid_name", "label", "start_frame", "end_frame")
    for row, entry in enumerate(entries):
        where = f"{split_file}[{row}]"
        missing = [k for k in fields if not isinstance(entry, dict) or k not in entry]
        if missing:
            _bad(errors, f"{where}: missing field {', '.join(missing)}")
            continue
        try:
            label, start, end = int(entry["label"]), int(entry["start_frame"]), int(entry["end_frame"])
        except (TypeError, ValueError):
            _bad(errors, f"{where}: label/start_frame/end_frame are not integers in {entry!r}")
            continue
        if not _in_range(label, len(classes)):
            _bad(errors, f"{where}: label {label} out of range 0..{len(classes) - 1}")
            continue
        if end <= start or start < 0:
            _bad(errors, f"{where}: empty frame range start_frame={start} end_frame={end}")
            continue
        name = str(entry["vid_name"])
        records.append(VideoRecord(name, root / "rgb" / f"{name}.mp4", label, where, VIDEO, start, end - start))
    return records, classes


# ---------------------------------------------------------------------------- Kinetics-400

KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def _read_csv_rows(path: Path, required: tuple[str, ...], errors):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        absent = [c for c in required if c not in header]
        if absent:
            raise GSFDataError(f"{path}: missing column(s) {', '.join(absent)} (header: {header})")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            empty = [c for c in required if not (row.get(c) or "").strip()]
            if empty:
                _bad(errors, f"{where}: missing field {', '.join(empty)}")
                continue
            yield where, row


def read_kinetics400(root, split: str = "train", *, errors: list[str] | None = None):
    """Kinetics-400: videos ``<split>/<youtube_id>_<start:06d>_<end:06d>.mp4`` (split folders ``train``,
    ``val``; flat or one folder per class); ``train.csv`` / ``validate.csv`` at the root or in
    ``annotations/`` (``label,youtube_id,time_start,time_end,split[,is_cc]``). Classes are the sorted labels
    of ``train.csv``."""
    root = _check_root(root)
    csv_name, folders = {
        "train": ("train.csv", ("train",)),
        "val": ("validate.csv", ("val", "validate", "valid")),
        "validate": ("validate.csv", ("val", "validate", "valid")),
        "validation": ("validate.csv", ("val", "validate", "valid")),
        "test": ("test.csv", ("test",)),
    }.get(split, (None, ()))
    if csv_name is None:
        raise GSFConfigError(f"kinetics400: unknown split {split!r}; choose train, val or test")
    split_file = find_file(root, (csv_name,))
    class_file = find_file(root, LABEL_FILES["kinetics400"]) if split != "train" else split_file
    classes = sorted({r["label"].strip() for _, r in _read_csv_rows(class_file, ("label",), [])})
    index = {name: i for i, name in enumerate(classes)}
    video_dir = next((root / d for d in folders if (root / d).is_dir()), root / folders[0])
    per_class = video_dir.is_dir() and any(e.is_dir() for e in os.scandir(video_dir))
    class_dirs: dict[str, Path] = {}
    records = []
    for where, row in _read_csv_rows(split_file, KINETICS_COLUMNS, errors):
        name = row["label"].strip()
        if name not in index:
            _bad(errors, f"{where}: class {name!r} is not a train.csv label (label out of range)")
            continue
        try:
            stem = f"{row['youtube_id'].strip()}_{int(row['time_start']):06d}_{int(row['time_end']):06d}"
        except ValueError:
            _bad(errors, f"{where}: time_start/time_end are not integers")
            continue
        folder = video_dir
        if per_class:
            if name not in class_dirs:
                options = [video_dir / name, video_dir / name.replace(" ", "_")]
                class_dirs[name] = next((p for p in options if p.is_dir()), options[0])
            folder = class_dirs[name]
        records.append(VideoRecord(stem, folder / f"{stem}.mp4", index[name], where, VIDEO))
    return records, classes


# ---------------------------------------------------------------------------- EPIC-Kitchens-100

EPIC_COLUMNS = ("narration_id", "participant_id", "video_id", "start_frame", "stop_frame", "verb_class", "noun_class")
EPIC_DIRS = ANNOTATION_DIRS + ("epic-kitchens-100-annotations",)


def _epic_classes(root: Path, name: str, default: int) -> list[str]:
    try:
        path = find_file(root, (name,), EPIC_DIRS)
    except GSFDataError:
        return [str(i) for i in range(default)]
    rows = sorted(((int(r["id"]), r["key"]) for _, r in _read_csv_rows(path, ("id", "key"), None)))
    return [key for _, key in rows]


def read_epic100(root, split: str = "train", *, media: str = "auto", errors: list[str] | None = None):
    """EPIC-Kitchens-100: frames ``<participant>/rgb_frames/<video_id>/frame_0000000001.jpg`` or videos
    ``<participant>/videos/<video_id>.MP4``; ``EPIC_100_train.csv`` / ``EPIC_100_validation.csv`` (1-based
    ``start_frame``..``stop_frame`` inclusive; ``verb_class``, ``noun_class``); class names from
    ``EPIC_100_verb_classes.csv`` / ``EPIC_100_noun_classes.csv`` (97 verbs, 300 nouns without them).
    ``media``: ``"frames"``, ``"video"`` or ``"auto"`` (frames where the folder exists). Labels are
    ``(verb, noun)``; class_names is ``(verbs, nouns)``."""
    root = _check_root(root)
    if media not in ("auto", "frames", "video"):
        raise GSFConfigError(f"epic100: media must be auto, frames or video, got {media!r}")
    part = _split_name(split, {"train": "train", "validation": "validation", "val": "validation"}, "epic100")
    split_file = find_file(root, (f"EPIC_100_{part}.csv",), EPIC_DIRS)
    verb_file, noun_file = LABEL_FILES["epic100"]
    verbs = _epic_classes(root, verb_file, PUBLISHED_NUM_CLASSES["epic100"]["verb"])
    nouns = _epic_classes(root, noun_file, PUBLISHED_NUM_CLASSES["epic100"]["noun"])
    records = []
    use_frames: dict[str, bool] = {}
    for where, row in _read_csv_rows(split_file, EPIC_COLUMNS, errors):
        try:
            verb, noun = int(row["verb_class"]), int(row["noun_class"])
            start, stop = int(row["start_frame"]), int(row["stop_frame"])
        except ValueError:
            _bad(errors, f"{where}: verb_class/noun_class/start_frame/stop_frame are not integers")
            continue
        if not _in_range(verb, len(verbs)) or not _in_range(noun, len(nouns)):
            _bad(errors, f"{where}: verb_class {verb} / noun_class {noun} out of range ({len(verbs)}, {len(nouns)})")
            continue
        if start < 1 or stop < start:
            _bad(errors, f"{where}: bad frame range start_frame={start} stop_frame={stop}")
            continue
        participant, video_id = row["participant_id"].strip(), row["video_id"].strip()
        frame_dir = root / participant / "rgb_frames" / video_id
        if video_id not in use_frames:
            use_frames[video_id] = media == "frames" or (media == "auto" and frame_dir.is_dir())
        narration = row["narration_id"].strip()
        if use_frames[video_id]:
            record = VideoRecord(
                narration, frame_dir, (verb, noun), where, FRAMES, start, stop - start + 1, "frame_{:010d}.jpg"
            )
        else:
            videos = root / participant / "videos"
            path = videos / f"{video_id}.MP4"
            if not path.exists() and (videos / f"{video_id}.mp4").exists():
                path = videos / f"{video_id}.mp4"
            record = VideoRecord(narration, path, (verb, noun), where, VIDEO, start - 1, stop - start + 1)
        records.append(record)
    return records, (verbs, nouns)


# ---------------------------------------------------------------------------- TSN list files


def detect_frame_template(folder: Path) -> str:
    """The known frame template (docs/data-formats.md) whose first frame is in ``folder``."""
    try:
        names = set(os.listdir(folder))
    except OSError as err:
        raise GSFDataError(f"frame folder not found: {folder}") from err
    for template in KNOWN_FRAME_TEMPLATES:
        if template.format(1) in names:
            return template
    raise GSFDataError(
        f"no known frame template in {folder}: tried {', '.join(KNOWN_FRAME_TEMPLATES)}; pass frame_template"
    )


def read_tsn_list(
    list_file,
    root=None,
    *,
    frame_template: str | None = None,
    num_classes: int | None = None,
    errors: list[str] | None = None,
):
    """TSN list file: one ``<frame dir> <num frames> <label>`` a line (spaces, or commas as in the
    release's Kinetics lists); relative dirs are under ``root`` (default: the list file's folder).
    Frames are 1-based; ``frame_template`` is detected from the first folder when not given."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise GSFDataError(f"list file not found: {list_file}")
    root = Path(root) if root is not None else list_file.parent
    records = []
    with open(list_file, encoding="utf-8") as f:
        for row, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{list_file}:{row}"
            parts = line.strip().split(",") if "," in line else line.split()
            if len(parts) < 3:
                _bad(errors, f"{where}: expected '<frame dir> <num frames> <label>', got {line.strip()!r} (missing field)")
                continue
            folder, count, label = " ".join(parts[:-2]).strip(), parts[-2].strip(), parts[-1].strip()
            try:
                count, label = int(count), int(label)
            except ValueError:
                _bad(errors, f"{where}: num frames and label must be integers, got {line.strip()!r}")
                continue
            if label < 0 or (num_classes is not None and label >= num_classes):
                _bad(errors, f"{where}: label {label} out of range 0..{(num_classes or 0) - 1}")
                continue
            if count < 1:
                _bad(errors, f"{where}: num frames {count} < 1 (too few frames)")
                continue
            path = Path(folder) if os.path.isabs(folder) else root / folder
            records.append(VideoRecord(Path(folder).name, path, label, where, FRAMES, 1, count, "{}"))
    if frame_template is None and records:
        frame_template = detect_frame_template(records[0].path)
    template = frame_template or KNOWN_FRAME_TEMPLATES[0]
    records = [
        VideoRecord(r.video_id, r.path, r.label, r.source, FRAMES, 1, r.num_frames, template) for r in records
    ]
    count = num_classes if num_classes is not None else max((r.label for r in records), default=-1) + 1
    return records, [str(i) for i in range(count)]


READERS = {
    "ssv1": read_ssv1,
    "ssv2": read_ssv2,
    "diving48": read_diving48,
    "kinetics400": read_kinetics400,
    "epic100": read_epic100,
}
