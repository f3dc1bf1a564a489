"""gsf.data.fingerprint: what changes the digest of the data a run reads, and what does not.

The fingerprint never opens a sample, so these layouts hold placeholder bytes, not videos or JPEGs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gsf.data import fingerprint as fp
from gsf.errors import GSFDataError

from .builders import RELEASE_FORMAT_ROOTS

SPLITS = ["train", "val"]


def ssv2_layout(root: Path, num_videos: int = 6) -> Path:
    """SSv2 release layout: labels.json, train.json, validation.json, one file per video."""
    videos = root / "20bn-something-something-v2"
    videos.mkdir(parents=True)
    (root / "labels.json").write_text(json.dumps({"Moving something up": "0", "Moving something down": "1"}))
    entries = []
    for i in range(1, num_videos + 1):
        (videos / f"{i}.webm").write_bytes(b"v" * (100 + i))
        template = "Moving [something] up" if i % 2 else "Moving [something] down"
        entries.append({"id": str(i), "label": template, "template": template, "placeholders": ["something"]})
    (root / "train.json").write_text(json.dumps(entries[1:]))
    (root / "validation.json").write_text(json.dumps(entries[:1]))
    return root


def ssv1_layout(root: Path, num_videos: int = 3, frames: int = 5) -> Path:
    """SSv1 release layout: class list, split CSVs, one JPEG-named file per frame."""
    folder = root / "20bn-something-something-v1"
    root.mkdir(parents=True)
    (root / "something-something-v1-labels.csv").write_text("Pushing something\nPulling something\n")
    rows = []
    for i in range(1, num_videos + 1):
        (folder / str(i)).mkdir(parents=True)
        for n in range(1, frames + 1):
            (folder / str(i) / f"{n:05d}.jpg").write_bytes(b"j" * 50)
        rows.append(f"{i};{'Pushing something' if i % 2 else 'Pulling something'}")
    (root / "something-something-v1-train.csv").write_text("\n".join(rows[1:]) + "\n")
    (root / "something-something-v1-validation.csv").write_text(rows[0] + "\n")
    return root


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_fingerprint_counts_samples_per_split_and_hashes_the_annotation_files_read(tmp_path):
    found = fp.fingerprint_dataset("ssv2", ssv2_layout(tmp_path / "d"), SPLITS)
    assert {name: s.num_samples for name, s in found.splits.items()} == {"train": 5, "val": 1}
    assert set(found.splits["train"].files) == {"train.json", "labels.json"}
    assert set(found.splits["val"].files) == {"validation.json", "labels.json"}
    assert found.splits["train"].entries[0] == ("20bn-something-something-v2/2.webm", 102, 1)


def test_one_changed_label_changes_the_digest_and_names_the_split_file(tmp_path):
    root = ssv2_layout(tmp_path / "d")
    before = fp.fingerprint_dataset("ssv2", root, SPLITS)
    entries = json.loads((root / "train.json").read_text())
    entries[2]["template"] = "Moving [something] up" if "down" in entries[2]["template"] else "Moving [something] down"
    (root / "train.json").write_text(json.dumps(entries))
    after = fp.fingerprint_dataset("ssv2", root, SPLITS)
    assert after.digest != before.digest
    changes = fp.describe_changes(before.to_dict(), after)
    assert any("annotation file train.json changed" in line for line in changes), changes


def test_one_extra_video_changes_the_digest_and_says_how_many_samples(tmp_path):
    root = ssv2_layout(tmp_path / "d")
    before = fp.fingerprint_dataset("ssv2", root, SPLITS)
    (root / "20bn-something-something-v2" / "7.webm").write_bytes(b"v" * 300)
    entries = json.loads((root / "train.json").read_text())
    entries.append({"id": "7", "label": "x", "template": "Moving [something] up", "placeholders": []})
    (root / "train.json").write_text(json.dumps(entries))
    after = fp.fingerprint_dataset("ssv2", root, SPLITS)
    assert after.digest != before.digest
    changes = fp.describe_changes(before.to_dict(), after)
    assert "train: 5 -> 6 samples" in changes
    assert "train: 1 sample(s) added (20bn-something-something-v2/7.webm)" in changes


def test_a_video_of_another_size_under_the_same_name_changes_the_digest(tmp_path):
    root = ssv2_layout(tmp_path / "d")
    before = fp.fingerprint_dataset("ssv2", root, SPLITS)
    (root / "20bn-something-something-v2" / "3.webm").write_bytes(b"v" * 10)
    after = fp.fingerprint_dataset("ssv2", root, SPLITS)
    assert after.digest != before.digest
    assert "train: sample 20bn-something-something-v2/3.webm changed (103 -> 10 bytes)" in \
        fp.describe_changes(before.to_dict(), after)


def test_one_truncated_frames_folder_changes_the_digest_and_names_the_folder(tmp_path):
    root = ssv1_layout(tmp_path / "d")
    before = fp.fingerprint_dataset("ssv1", root, SPLITS)
    (root / "20bn-something-something-v1" / "2" / "00005.jpg").unlink()
    after = fp.fingerprint_dataset("ssv1", root, SPLITS)
    assert after.digest != before.digest
    assert after.splits["train"].entries[0] == ("20bn-something-something-v1/2", 200, 4)
    assert "train: sample 20bn-something-something-v1/2 changed (5 -> 4 files, 250 -> 200 bytes)" in \
        fp.describe_changes(before.to_dict(), after)


def test_a_renamed_root_folder_keeps_the_digest(tmp_path):
    root = ssv1_layout(tmp_path / "d")
    before = fp.fingerprint_dataset("ssv1", root, SPLITS)
    moved = root.rename(tmp_path / "elsewhere")
    after = fp.fingerprint_dataset("ssv1", moved, SPLITS)
    assert after.digest == before.digest
    assert after.root != before.root
    assert fp.describe_changes(before.to_dict(), after) == []


def test_max_videos_fingerprints_only_the_samples_a_run_reads(tmp_path):
    root = ssv2_layout(tmp_path / "d")
    few = fp.fingerprint_dataset("ssv2", root, SPLITS, max_videos=2)
    assert few.num_samples("train") == 2
    (root / "20bn-something-something-v2" / "6.webm").write_bytes(b"")  # the last train sample: not read
    assert fp.fingerprint_dataset("ssv2", root, SPLITS, max_videos=2).digest == few.digest
    assert few.digest != fp.fingerprint_dataset("ssv2", root, SPLITS).digest


def test_the_cached_fingerprint_writes_nothing_into_the_data_folder(tmp_path):
    root = ssv2_layout(tmp_path / "d")
    before = tree(root)
    run = tmp_path / "run"
    fp.cached_fingerprint(run, "ssv2", root, SPLITS)
    fp.cached_fingerprint(run, "ssv2", root, SPLITS)
    assert tree(root) == before
    assert (run / fp.FINGERPRINT_FILE).is_file()


def test_the_cache_is_reused_while_its_stamp_holds_and_redone_when_a_sample_is_added(tmp_path, monkeypatch):
    root = ssv2_layout(tmp_path / "d")
    first = fp.cached_fingerprint(tmp_path / "run", "ssv2", root, SPLITS)

    def no_stat(record, root):
        raise AssertionError("a sample was stat'ed although the cache holds")

    with monkeypatch.context() as patch:
        patch.setattr(fp, "_entry", no_stat)
        assert fp.cached_fingerprint(tmp_path / "run", "ssv2", root, SPLITS).digest == first.digest
    (root / "20bn-something-something-v2" / "7.webm").write_bytes(b"v")
    entries = json.loads((root / "train.json").read_text())
    (root / "train.json").write_text(json.dumps([*entries, {**entries[0], "id": "7"}]))
    again = fp.cached_fingerprint(tmp_path / "run", "ssv2", root, SPLITS)
    assert again.num_samples("train") == 6 and again.digest != first.digest


def test_a_missing_root_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(GSFDataError, match="nowhere"):
        fp.fingerprint_dataset("ssv2", tmp_path / "nowhere", SPLITS)


def test_the_summary_without_entries_still_names_the_changed_file_and_count(tmp_path):
    root = ssv2_layout(tmp_path / "d")
    before = fp.fingerprint_dataset("ssv2", root, SPLITS).summary()
    shutil.copy(root / "validation.json", root / "train.json")
    after = fp.fingerprint_dataset("ssv2", root, SPLITS)
    changes = fp.describe_changes(json.loads(json.dumps(before)), after)
    assert "train: 5 -> 1 samples" in changes
    assert any(line.startswith("train: annotation file train.json changed") for line in changes)


@pytest.mark.parametrize(
    "fixture,dataset,split",
    RELEASE_FORMAT_ROOTS,
)
def test_gsf_data_validate_prints_the_digest_of_the_split_of_every_release_format(request, capsys, fixture,
                                                                                   dataset, split):
    from gsf.cli import main

    root = request.getfixturevalue(fixture)
    code = main(["data", "validate", "--dataset", dataset, "--root", str(root), "--split", split, "--quick"])
    out = capsys.readouterr().out
    expected = fp.fingerprint_dataset(dataset, root, [split])
    assert code == 0, out
    assert expected.num_samples(split) > 0 and expected.splits[split].files
    assert f"{split} {expected.num_samples(split)} samples; digest {expected.digest}" in out
