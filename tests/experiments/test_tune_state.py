"""Tune's state files cut off by a killed driver: the runner keeps complete copies and puts them back."""

import json

import pytest

from experiments.tune_state import STATE_BACKUP_DIR, backup_tune_state, repair_tune_state
from gsf.errors import GSFError


def _write(path, payload):
    path.write_text(json.dumps(payload), encoding="utf-8")


def test_a_cut_off_state_file_is_replaced_by_its_last_complete_copy(tmp_path):
    state = tmp_path / "experiment_state-2026-11-26_11-03-54.json"
    searcher = tmp_path / "basic-variant-state-2026-11-26_11-03-54.json"  # a pickle in Tune: left alone
    _write(state, {"trials": ["a", "b"], "step": 1})
    searcher.write_bytes(b"\x80\x05 not json")
    backup_tune_state(tmp_path)
    assert json.loads((tmp_path / STATE_BACKUP_DIR / state.name).read_text()) == {"trials": ["a", "b"], "step": 1}

    state.write_text('{"trials": ["a", "b"], "st', encoding="utf-8")  # killed mid-write
    backup_tune_state(tmp_path)  # a cut-off file never replaces the complete copy
    assert repair_tune_state(tmp_path) == [state.name]
    assert json.loads(state.read_text()) == {"trials": ["a", "b"], "step": 1}
    assert searcher.read_bytes() == b"\x80\x05 not json"
    assert not (tmp_path / STATE_BACKUP_DIR / searcher.name).exists()
    assert repair_tune_state(tmp_path) == []  # nothing left to repair
    assert not list((tmp_path / STATE_BACKUP_DIR).glob("*.partial"))


def test_a_newer_complete_state_replaces_the_copy(tmp_path):
    state = tmp_path / "experiment_state-x.json"
    _write(state, {"step": 1})
    backup_tune_state(tmp_path)
    _write(state, {"step": 2})
    copy = tmp_path / STATE_BACKUP_DIR / state.name
    copy.touch()
    import os
    os.utime(copy, ns=(0, 0))  # older than the state file, as after Tune's next save
    backup_tune_state(tmp_path)
    assert json.loads(copy.read_text()) == {"step": 2}


def test_a_cut_off_state_file_without_a_copy_is_named_in_the_error(tmp_path):
    state = tmp_path / "experiment_state-x.json"
    state.write_text("", encoding="utf-8")
    with pytest.raises(GSFError, match=r"experiment_state-x.json is cut off .*no complete copy"):
        repair_tune_state(tmp_path)
