"""A synthetic temporal benchmark in the Something-Something V2 release format (docs/data-formats.md).

Classes come in pairs that differ only by the direction of time: a clip of the second class is literally
the time reversal of a trajectory drawn for the first, so both classes have the same distribution of
single frames. A frame-order-blind model (TSN) stays at chance within each pair; a temporal model can
learn it. Shapes, colours, textures, sizes, speeds and backgrounds are random.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from gsf.data.readers import ssv2_class_name
from gsf.errors import GSFConfigError

# (forward template, reversed template, motion). Templates read like SSv2's; "[something]" is the object.
PAIR_TEMPLATES = (
    ("Moving [something] from left to right", "Moving [something] from right to left", "horizontal"),
    ("Moving [something] up", "Moving [something] down", "vertical"),
    ("Turning [something] clockwise", "Turning [something] anticlockwise", "rotation"),
    ("Approaching [something] with your camera", "Moving away from [something] with your camera", "scale"),
    ("Making [something] appear", "Making [something] disappear", "fade"),
    ("Pushing [something] so that it speeds up", "Pushing [something] so that it slows down", "acceleration"),
)
MAX_CLASSES = 2 * len(PAIR_TEMPLATES)
SHAPES = ("disc", "square", "triangle", "cross", "bar")
TEXTURES = ("solid", "stripes", "checker")
FPS = 12  # the frame rate of SSv2 videos


def class_names(num_classes: int) -> list[str]:
    """Class names in label order: pair p is classes 2p (forward in time) and 2p + 1 (reversed)."""
    if num_classes < 2 or num_classes % 2 or num_classes > MAX_CLASSES:
        raise GSFConfigError(f"num_classes must be even, between 2 and {MAX_CLASSES}, got {num_classes}")
    names = []
    for forward, backward, _ in PAIR_TEMPLATES[: num_classes // 2]:
        names += [ssv2_class_name(forward), ssv2_class_name(backward)]
    return names


def synthetic_pairs(labels: Sequence[str] | Mapping[str, str | int]) -> list[tuple[int, int]]:
    """Index pairs ``(forward, reversed)`` of the synthetic classes found in ``labels`` (class names in
    label order, or an SSv2 ``labels.json`` mapping ``{"name": "index"}``)."""
    if isinstance(labels, Mapping):
        index = {name: int(i) for name, i in labels.items()}
    else:
        index = {name: i for i, name in enumerate(labels)}
    pairs = []
    for forward, backward, _ in PAIR_TEMPLATES:
        a, b = index.get(ssv2_class_name(forward)), index.get(ssv2_class_name(backward))
        if a is not None and b is not None:
            pairs.append((a, b))
    return sorted(pairs)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3)


def _distinct_colour(rng: np.random.Generator, other: np.ndarray) -> np.ndarray:
    for _ in range(20):
        colour = _colour(rng)
        if np.abs(colour - other).sum() > 150:
            return colour
    return 255 - other


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = _colour(rng)
    second = base * 0.6 + _colour(rng) * 0.4
    kind = rng.choice(("flat", "noise", "stripes", "gradient"))
    y, x = np.mgrid[0:size, 0:size] / size
    if kind == "flat":
        weight = np.zeros((size, size))
    elif kind == "noise":
        coarse = rng.uniform(0, 1, size=(size // 8 + 1, size // 8 + 1))
        weight = np.kron(coarse, np.ones((8, 8)))[:size, :size]
    elif kind == "stripes":
        angle, period = rng.uniform(0, math.pi), rng.uniform(0.1, 0.3)
        weight = (np.floor((x * math.cos(angle) + y * math.sin(angle)) / period) % 2).astype(float)
    else:
        angle = rng.uniform(0, 2 * math.pi)
        weight = (x * math.cos(angle) + y * math.sin(angle) + 1.5) / 3
    return base * (1 - weight[..., None]) + second * weight[..., None]


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if shape == "disc":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "triangle":
        return (v >= -0.8) & (v <= 0.7) & (np.abs(u) <= (v + 0.8) * 0.6)
    if shape == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 0.9)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 0.9))
    return (np.abs(u) <= 0.95) & (np.abs(v) <= 0.35)  # bar


def _trajectory(motion: str, rng: np.random.Generator, t: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Per-frame centre x, y (pixels), angle (radians), radius (pixels) and opacity for the forward class."""
    n = len(t)
    t0, t1 = rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0)
    ramp = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)  # motion starts and ends at random times
    radius = np.full(n, rng.uniform(0.1, 0.18) * size)
    x = np.full(n, rng.uniform(0.3, 0.7) * size)
    y = np.full(n, rng.uniform(0.3, 0.7) * size)
    angle = np.full(n, rng.uniform(0, 2 * math.pi))
    alpha = np.ones(n)
    if motion == "horizontal":
        start, end = rng.uniform(0.1, 0.35), rng.uniform(0.65, 0.9)
        x = (start + (end - start) * ramp) * size
    elif motion == "vertical":  # up: y decreases in image coordinates
        start, end = rng.uniform(0.65, 0.9), rng.uniform(0.1, 0.35)
        y = (start + (end - start) * ramp) * size
    elif motion == "rotation":  # clockwise on screen (y points down)
        angle = angle + rng.uniform(0.5, 1.5) * math.pi * ramp
    elif motion == "scale":
        small, large = rng.uniform(0.05, 0.09), rng.uniform(0.22, 0.32)
        radius = (small + (large - small) * ramp) * size
    elif motion == "fade":
        alpha = ramp
    else:  # acceleration along a random direction, from rest
        direction = rng.uniform(0, 2 * math.pi)
        distance = rng.uniform(0.3, 0.5) * size
        cx, cy = size / 2 - math.cos(direction) * distance / 2, size / 2 - math.sin(direction) * distance / 2
        travelled = distance * ramp**2
        x, y = cx + math.cos(direction) * travelled, cy + math.sin(direction) * travelled
    return {"x": x, "y": y, "angle": angle, "radius": radius, "alpha": alpha}


def render_clip(pair: int, *, seed: int, video_id: int, num_frames: int, size: int, reverse: bool = False) -> np.ndarray:
    """Frames uint8 ``(num_frames, size, size, 3)`` of video ``video_id``: the forward trajectory of pair
    ``pair`` drawn from ``(seed, video_id)``, time-reversed when ``reverse`` (the pair's second class)."""
    motion = PAIR_TEMPLATES[pair][2]
    rng = np.random.default_rng(np.random.SeedSequence([seed, video_id]))
    background = _background(rng, size)
    shape = str(rng.choice(SHAPES))
    texture = str(rng.choice(TEXTURES[1:] if motion == "rotation" and shape == "disc" else TEXTURES))
    colour = _colour(rng)
    colour2 = _distinct_colour(rng, colour)
    frequency = rng.uniform(1.5, 3.0)
    t = np.linspace(0.0, 1.0, num_frames)
    path = _trajectory(motion, rng, t, size)
    noise = rng.normal(0.0, 3.0, size=(num_frames, size, size, 1))
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for i in range(num_frames):
        dx, dy = xx - path["x"][i], yy - path["y"][i]
        c, s, r = math.cos(path["angle"][i]), math.sin(path["angle"][i]), path["radius"][i]
        u, v = (dx * c + dy * s) / r, (-dx * s + dy * c) / r
        mask = _shape_mask(shape, u, v)
        if texture == "stripes":
            second = np.floor(u * frequency) % 2 == 1
        elif texture == "checker":
            second = (np.floor(u * frequency) + np.floor(v * frequency)) % 2 == 1
        else:
            second = np.zeros_like(mask)
        obj = np.where(second[..., None], colour2, colour)
        weight = (mask * path["alpha"][i])[..., None]
        frame = background * (1 - weight) + obj * weight + noise[i]
        frames[i] = np.clip(frame, 0, 255).round().astype(np.uint8)
    return frames[::-1].copy() if reverse else frames


def write_webm(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    """Encode uint8 ``(T, H, W, 3)`` frames as a VP8 WebM (single-threaded, so the bytes are reproducible)."""
    with av.open(str(path), mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=Fraction(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": "4", "b:v": "4M", "deadline": "good", "cpu-used": "4", "auto-alt-ref": "0"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def synthesize_dataset(
    out,
    *,
    num_classes: int = 10,
    videos_per_class: int = 60,
    num_frames: int = 16,
    size: int = 64,
    seed: int = 0,
    val_fraction: float = 0.2,
) -> dict:
    """Write the synthetic benchmark under ``out`` in the SSv2 release layout: videos
    ``20bn-something-something-v2/<id>.webm`` and ``labels.json``, ``train.json``, ``validation.json``.

    Deterministic for a seed (same annotations, same decoded frames). Returns a summary dict.
    """
    names = class_names(num_classes)
    if videos_per_class < 2:
        raise GSFConfigError(f"videos_per_class must be >= 2, got {videos_per_class}")
    if num_frames < 2 or size < 16 or size % 2:
        raise GSFConfigError(f"need num_frames >= 2 and an even size >= 16, got {num_frames}, {size}")
    if not 0.0 < val_fraction < 1.0:
        raise GSFConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    out = Path(out)
    videos = out / "20bn-something-something-v2"
    videos.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2**31]))
    total = num_classes * videos_per_class
    ids = rng.permutation(total) + 1
    num_val = max(1, int(round(videos_per_class * val_fraction)))
    splits: dict[str, list[dict]] = {"train": [], "validation": []}
    for k, name in enumerate(names):
        template = PAIR_TEMPLATES[k // 2][k % 2]
        class_ids = ids[k * videos_per_class : (k + 1) * videos_per_class]
        for j, video_id in enumerate(class_ids):
            video_id = int(video_id)
            frames = render_clip(k // 2, seed=seed, video_id=video_id, num_frames=num_frames, size=size, reverse=k % 2 == 1)
            write_webm(videos / f"{video_id}.webm", frames)
            entry = {"id": str(video_id), "label": name, "template": template, "placeholders": ["something"]}
            splits["validation" if j < num_val else "train"].append(entry)
    (out / "labels.json").write_text(json.dumps({n: str(i) for i, n in enumerate(names)}, indent=1))
    for split, entries in splits.items():
        entries.sort(key=lambda e: int(e["id"]))
        (out / f"{split}.json").write_text(json.dumps(entries, indent=1))
    return {
        "root": str(out),
        "classes": num_classes,
        "pairs": synthetic_pairs(names),
        "train": len(splits["train"]),
        "validation": len(splits["validation"]),
        "frames": num_frames,
        "size": size,
        "seed": seed,
    }
