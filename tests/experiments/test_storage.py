"""``gsf sweep --storage``: a folder or a file:// URI; object stores are refused with the way round (no Ray)."""

from __future__ import annotations

import pytest

from experiments.runner import storage_folder
from gsf.errors import GSFConfigError


def test_a_folder_and_a_file_uri_name_the_same_storage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_folder("sweeps") == tmp_path / "sweeps"
    assert storage_folder(tmp_path / "a b") == tmp_path / "a b"
    assert storage_folder(f"file://{tmp_path}/a%20b") == tmp_path / "a b"
    assert storage_folder(f"file://localhost{tmp_path}/x") == tmp_path / "x"


@pytest.mark.parametrize(("uri", "message"), [
    ("s3://bucket/sweeps", r"--storage s3://bucket/sweeps: s3:// storage is not supported yet .* mount it"),
    ("gs://bucket/sweeps", r"gs:// storage is not supported yet"),
    ("file://otherhost/sweeps", r"--storage file://otherhost/sweeps: a file:// URI names a local path"),
])
def test_other_uris_are_refused_naming_the_flag(uri, message):
    with pytest.raises(GSFConfigError, match=message):
        storage_folder(uri)
