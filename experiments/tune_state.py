"""Tune's experiment state kept resumable when a driver is killed while Tune rewrites it.

Tune rewrites its experiment state files in place; a driver killed during that write leaves a cut-off file,
from which ``Tuner.restore`` cannot resume (it silently restarts the whole experiment instead). The driver keeps
the last complete copy of each (:func:`backup_tune_state`, every :data:`STATE_BACKUP_EVERY_S`) and
``--resume`` puts it back (:func:`repair_tune_state`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from gsf.errors import GSFCheckpointError

log = logging.getLogger(__name__)

STATE_BACKUP_DIR = ".gsf-state-backup"
STATE_BACKUP_EVERY_S = 2.0


def _tune_state_files(sweep_dir: Path) -> list[Path]:
    """Tune's experiment state files in a sweep folder: JSON, rewritten in place at each snapshot. (The search
    algorithm's ``*-state-*.json`` are pickles despite their name, and not checked here.)"""
    return sorted(sweep_dir.glob("experiment_state-*.json"))


def _complete_json(path: Path) -> bool:
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def backup_tune_state(sweep_dir: Path) -> None:
    """Keep the last complete copy of each of Tune's state files under ``.gsf-state-backup/``.

    Tune rewrites its experiment state in place; a driver killed during that write leaves a cut-off file,
    from which ``Tuner.restore`` cannot resume (it silently restarts the whole experiment instead).
    """
    backup = sweep_dir / STATE_BACKUP_DIR
    for path in _tune_state_files(sweep_dir):
        target = backup / path.name
        try:
            if target.exists() and target.stat().st_mtime_ns >= path.stat().st_mtime_ns:
                continue
            backup.mkdir(exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            shutil.copyfile(path, partial)  # then checked: the copy, not the file Tune may be rewriting
            if _complete_json(partial):
                os.replace(partial, target)
            else:
                partial.unlink(missing_ok=True)
        except OSError:  # bookkeeping must never take the sweep down
            log.exception("could not back up Tune's state file %s", path)


def repair_tune_state(sweep_dir: Path) -> list[str]:
    """Before ``Tuner.restore``: put back the last complete copy of any Tune state file a killed driver left
    cut off. Returns the names repaired; raises when a file is cut off and no complete copy exists."""
    repaired = []
    for path in _tune_state_files(sweep_dir):
        if _complete_json(path):
            continue
        copy = sweep_dir / STATE_BACKUP_DIR / path.name
        if not _complete_json(copy):
            raise GSFCheckpointError(
                f"Tune's state file {path} is cut off (the driver was killed while writing it) and there is no "
                f"complete copy in {copy.parent}: the sweep cannot be resumed from it; start a new sweep "
                "(without --resume, or with another --name)")
        shutil.copyfile(copy, path)
        repaired.append(path.name)
    return repaired
