"""The trained colour model: a tiny model trained on a small colour-coded data set in the SSv2 release layout,
and its held-out videos. ``tests/conftest.py`` registers this module as a plugin (``pytest_plugins``), so the
session fixture :func:`trained` is defined once for the whole suite: the prediction and export tests
(tests/inference) and the run-logging tests (tests/experiments/test_run_logging.py) share one training per
session and worker. Tests import :data:`CLASS_NAMES` and :func:`render` from ``tests.inference.fixtures``.

The classes differ by the hue of the scene, so resnet_tiny learns them in a few CPU epochs: these tests are
about the prediction, export and logging pipeline, not about temporal modelling (the synthetic temporal
benchmark of ``gsf data synth`` needs far more training than a test can afford).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

CLASS_NAMES = ("Showing a red scene", "Showing a green scene", "Showing a blue scene", "Showing a white scene")
HUES = np.array([(200, 40, 40), (40, 180, 60), (40, 70, 210), (220, 220, 220)], dtype=float)
TRAIN_PER_CLASS, HELD_OUT_PER_CLASS = 12, 2
FRAMES, SIZE = 8, 32
TRAIN_OVERRIDES = [
    "model.backbone=resnet_tiny", "model.pretrained=none", "model.temporal=gsf", "model.dropout=0.0", "data.dataset=ssv2",
    "data.num_frames=4", "data.input_size=32", "data.batch_size=8", "data.num_workers=0",
    "data.randaugment=false", "data.test_views=1x1", "optim.epochs=8", "optim.warmup_epochs=1",
    "optim.lr=0.02", "optim.base_batch_size=8", "optim.weight_decay=0.0", "runtime.eval_every=8",
    "runtime.progress=false",
    "runtime.device=cpu", "runtime.num_threads=1", "runtime.seed=0",
]


def render(label: int, *, seed: int, frames: int = FRAMES, height: int = SIZE, width: int = SIZE) -> np.ndarray:
    """uint8 ``(frames, height, width, 3)``: noise around the class hue, and a darker square of it moving
    across."""
    rng = np.random.default_rng([label, seed])
    base = HUES[label] + rng.normal(0, 12, size=3)
    side = max(4, min(height, width) // 4)
    colour = base * rng.uniform(0.4, 0.7)
    x0, y0 = rng.integers(0, width - side), rng.integers(0, height - side)
    dx, dy = rng.integers(-2, 3, size=2)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        frame = base + rng.normal(0, 10, size=(height, width, 3))
        x, y = int(np.clip(x0 + dx * t, 0, width - side)), int(np.clip(y0 + dy * t, 0, height - side))
        frame[y:y + side, x:x + side] = colour
        out[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return out


def write_colour_dataset(root: Path) -> list[tuple[Path, int]]:
    """The data set in the SSv2 layout (``labels.json``, ``train.json``, ``validation.json``, webm videos);
    returns the held-out (validation) videos with their labels."""
    from gsf.data.synth import write_webm  # imported here: every pytest session loads this module (a plugin)

    videos = root / "20bn-something-something-v2"
    videos.mkdir(parents=True)
    splits: dict[str, list] = {"train": [], "validation": []}
    held_out = []
    video_id = 0
    for label, name in enumerate(CLASS_NAMES):
        for j in range(TRAIN_PER_CLASS + HELD_OUT_PER_CLASS):
            video_id += 1
            path = videos / f"{video_id}.webm"
            write_webm(path, render(label, seed=video_id))
            split = "validation" if j < HELD_OUT_PER_CLASS else "train"
            splits[split].append({"id": str(video_id), "label": name, "template": name, "placeholders": []})
            if split == "validation":
                held_out.append((path, label))
    (root / "labels.json").write_text(json.dumps({n: str(i) for i, n in enumerate(CLASS_NAMES)}))
    for split, entries in splits.items():
        (root / f"{split}.json").write_text(json.dumps(entries))
    return held_out


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """``{"root", "checkpoint", "held_out": [(path, label)], "config"}`` of a model trained for 8 epochs
    (about 7 s of CPU; with weight decay or batches of 4 it learned the hues for some seeds only)."""
    from gsf.engine.config import load_config
    from gsf.engine.trainer import train

    base = tmp_path_factory.mktemp("colours")
    root = base / "data"
    held_out = write_colour_dataset(root)
    config = load_config(None, [*TRAIN_OVERRIDES, f"data.root={root}"])
    train(config, base / "run")
    checkpoint = base / "run" / "checkpoints" / "best.pt"
    assert checkpoint.is_file()
    return {"root": root, "checkpoint": checkpoint, "held_out": held_out, "config": config}
