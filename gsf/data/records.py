"""The one record type shared by every release-format reader (docs/data-formats.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gsf.errors import GSFDataError

VIDEO = "video"
FRAMES = "frames"


@dataclass(frozen=True)
class VideoRecord:
    """One annotated sample, whatever the release format.

    Attributes:
        video_id: the identifier the release uses (SSv2 ``id``, Kinetics file stem, EPIC ``narration_id``).
        path: the video file (``kind == "video"``) or the frame folder (``kind == "frames"``).
        label: class index, or ``(verb, noun)`` for EPIC-Kitchens-100.
        source: where the annotation came from, ``"<file>:<row>"``, so errors can name it.
        kind: ``"video"`` or ``"frames"``.
        first_frame: number of the sample's first frame in the source's own numbering: the file number for
            frame folders (1-based in every release), the 0-based decode index for videos.
        num_frames: frames in the sample, or ``None`` to use everything from ``first_frame`` to the end
            (counted when the sample is read).
        frame_template: file-name template of a frame folder, e.g. ``"{:05d}.jpg"``.
    """

    video_id: str
    path: Path
    label: int | tuple[int, int]
    source: str
    kind: str = VIDEO
    first_frame: int = 0
    num_frames: int | None = None
    frame_template: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in (VIDEO, FRAMES):
            raise GSFDataError(f"VideoRecord.kind must be {VIDEO!r} or {FRAMES!r}, got {self.kind!r}")
        if self.kind == FRAMES and not self.frame_template:
            raise GSFDataError(f"frame record {self.video_id!r} ({self.source}) needs a frame_template")
