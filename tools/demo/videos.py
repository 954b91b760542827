"""Sample inputs for the demo: real H.264 clips made with ffmpeg's testsrc (the imageio-ffmpeg binary), plus inputs
that can never be processed (a text file, an empty object)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CLIPS = (
    # key, seconds, size
    ("clip-01.mp4", 2, "640x360"),
    ("clip-02.mp4", 1, "854x480"),
    ("clip-03.mp4", 2, "320x240"),
    ("portrait clip 04.mp4", 1, "360x640"),
    ("été/clip 05 +1.mov", 1, "426x240"),
)
DEFAULT_VIDEOS = len(CLIPS)
MAX_VIDEOS = 50


@dataclass(frozen=True)
class SampleObject:
    key: str
    data: bytes
    valid: bool
    description: str

    @property
    def size(self) -> int:
        return len(self.data)


def clip_specs(count: int) -> list[tuple[str, int, str]]:
    """``count`` clips: the first ones of :data:`CLIPS` (awkward names included), then plain ``clip-NN.mp4``."""
    if not 1 <= count <= MAX_VIDEOS:
        raise ValueError(f"count must be 1..{MAX_VIDEOS}, got {count}")
    extra = [(f"clip-{n:02d}.mp4", 1, CLIPS[n % len(CLIPS)][2]) for n in range(len(CLIPS) + 1, count + 1)]
    return [*CLIPS[:count], *extra]


def sample_objects(directory: Path, count: int = DEFAULT_VIDEOS) -> list[SampleObject]:
    """``count`` clips (see :func:`clip_specs`; made once, kept in ``directory``) and two bad inputs."""
    from sqs_decoupling.video.samples import (
        make_sample_video,  # not at import: `python -m tools.demo --help` stays light
    )

    objects: list[SampleObject] = []
    for key, seconds, size in clip_specs(count):
        path = directory / f"{seconds}s-{size}-{Path(key).name}"
        if not path.exists():
            make_sample_video(path, seconds=seconds, size=size)
        objects.append(SampleObject(key, path.read_bytes(), True, f"H.264 {size}, {seconds} s"))
    objects.append(SampleObject("notes.txt", b"not a video, just notes\n" * 20, False, "text file (not a video)"))
    objects.append(SampleObject("empty.mp4", b"", False, "empty object"))
    return objects
