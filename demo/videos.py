"""Sample inputs for the demo: real H.264 clips made with ffmpeg's testsrc (the imageio-ffmpeg binary), plus inputs
that can never be processed (a text file, an empty object)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from video_processing.samples import make_sample_video

CLIPS = (
    # key, seconds, size
    ("clip-01.mp4", 2, "640x360"),
    ("clip-02.mp4", 1, "854x480"),
    ("clip-03.mp4", 2, "320x240"),
    ("portrait clip 04.mp4", 1, "360x640"),
    ("été/clip 05 +1.mov", 1, "426x240"),
)


@dataclass(frozen=True)
class SampleObject:
    key: str
    data: bytes
    valid: bool
    description: str

    @property
    def size(self) -> int:
        return len(self.data)


def sample_objects(directory: Path) -> list[SampleObject]:
    """The clips of :data:`CLIPS` (made once, kept in ``directory``) and two bad inputs."""
    objects: list[SampleObject] = []
    for key, seconds, size in CLIPS:
        path = directory / f"{seconds}s-{size}-{Path(key).name}"
        if not path.exists():
            make_sample_video(path, seconds=seconds, size=size)
        objects.append(SampleObject(key, path.read_bytes(), True, f"H.264 {size}, {seconds} s"))
    objects.append(SampleObject("notes.txt", b"not a video, just notes\n" * 20, False, "text file (not a video)"))
    objects.append(SampleObject("empty.mp4", b"", False, "empty object"))
    return objects
