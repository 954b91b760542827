"""Sample videos made with ffmpeg's ``testsrc`` source: for the demo, the benchmarks and the tests.

They are real H.264 clips (a moving test pattern, optionally with a sine tone), so everything downstream runs the
same code it runs on user uploads.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sqs_decoupling.video.ffmpeg import ffmpeg_exe


def make_sample_video(
    path: Path, *, seconds: float = 1, size: str = "160x120", fps: int = 25, audio: bool = False
) -> Path:
    """Encode a ``testsrc`` clip (H.264 in MP4, yuv420p; ``audio`` adds a sine tone as AAC) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = ["-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size}:rate={fps}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    subprocess.run(
        [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            *inputs,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            *(["-c:a", "aac", "-shortest"] if audio else []),
            "-y",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    return path


def _ffmpeg(*args: str, stdout: int | None = None) -> bytes:
    done = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args],
        check=True,
        timeout=120,
        stdout=stdout,
    )
    return done.stdout or b""


def _h264(source: str, dest: Path, *extra: str, pix_fmt: str = "yuv420p") -> Path:
    _ffmpeg(
        "-f",
        "lavfi",
        "-i",
        source,
        *extra,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        pix_fmt,
        "-y",
        str(dest),
    )
    return dest


def make_pixel_bomb(path: Path, *, side: int = 8000, frames: int = 3) -> Path:
    """A tiny H.264 file (about 190 KB) of ``frames`` gray ``side`` x ``side`` frames: each decodes to
    ``side``² x 1.5 bytes (96 MB at 8000), and a decoder holds several."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Scaling a 16x16 source up is far cheaper than generating the big frames directly. The source stops after
    # ``frames`` frames (d=): an endless one had ffmpeg scale frames ahead of the encoder that it never encoded, the
    # same file for 30% more memory touched (103,000-127,000 page faults instead of 79,600 here).
    return _h264(
        f"color=c=gray:s=16x16:r=25:d={frames / 25:g},scale={side}:{side}:flags=neighbor",
        path,
        "-frames:v",
        str(frames),
        "-threads",
        "1",
    )


def make_newline_metadata_video(path: Path, *, newlines: int = 4_000_000) -> Path:
    """A 1 s clip whose title is ``newlines`` newlines (4 MB by default): ffmpeg's human-readable dump prints about
    23 bytes for each (92 MB), so whoever keeps what ffmpeg prints grows with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = make_sample_video(path.with_name(path.stem + "-plain.mp4"), size="640x480")
    # ffmetadata: a value's newlines are escaped with a backslash; far more than a command line may hold.
    metadata = path.with_name(path.stem + ".ffmetadata")
    metadata.write_text(";FFMETADATA1\ntitle=" + "\\\n" * newlines + "end\n")
    _ffmpeg(
        "-i",
        str(clip),
        "-f",
        "ffmetadata",
        "-i",
        str(metadata),
        "-map",
        "0",
        "-map_metadata",
        "1",
        "-c",
        "copy",
        "-y",
        str(path),
    )
    return path


FAKE_STREAM_LINES = (
    "x\n  Duration: 00:00:01.00, start: 0.000000, bitrate: 10 kb/s\n"
    "  Stream #0:0: Video: h264, yuv420p, 320x240, 25 fps\n  y"
)
"""A tag name that makes ffmpeg's human-readable dump show a 1 s, 25 fps video before the real facts."""


def make_fake_stream_lines_video(path: Path, *, fps: int = 1000, seconds: float = 0.5) -> Path:
    """A ``seconds`` s 320x240 clip at ``fps`` frames per second whose tags print :data:`FAKE_STREAM_LINES`
    (an MP4 ``mdta`` key: any text, newlines included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return _h264(
        f"testsrc=duration={seconds}:size=320x240:rate={fps}",
        path,
        "-movflags",
        "use_metadata_tags",
        "-metadata",
        f"{FAKE_STREAM_LINES}=v",
    )


def make_corrupt_frames_video(path: Path, *, title: str) -> Path:
    """A clip whose container is intact and whose frames are garbage, titled ``title``: ffmpeg reads it, then fails
    to decode it (the input's fault, whatever the title says)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    clip = _h264("testsrc=duration=1:size=320x240:rate=25", path.with_name(path.stem + "-clip.mp4"))
    # faststart: the index (moov) before the frames (mdat), so the frames can be overwritten to the end of the file.
    _ffmpeg("-i", str(clip), "-c", "copy", "-movflags", "+faststart", "-metadata", f"title={title}", "-y", str(path))
    data = bytearray(path.read_bytes())
    frames = data.index(b"mdat") + 4
    data[frames : len(data) - 1] = bytes(0xFF for _ in range(len(data) - 1 - frames))
    path.write_bytes(bytes(data))
    return path


def make_edge_case_corpus(directory: Path, *, pixel_bomb: Path | None = None) -> dict[str, Path]:
    """Generate the edge-case uploads (each a few KB to a few hundred KB) into ``directory``; name -> file.

    ``pixel_bomb``: a ``make_pixel_bomb()`` file made earlier, copied in as the ``huge_frame`` case instead of made
    (the costliest case to make: about 1 GB of frame buffers)."""
    directory.mkdir(parents=True, exist_ok=True)
    clip = make_sample_video(directory / "plain.mp4", seconds=1, size="640x480")
    corpus: dict[str, Path] = {}
    corpus["one_frame"] = _h264("testsrc=size=640x480:rate=25", directory / "one_frame.mp4", "-frames:v", "1")
    corpus["no_video_stream"] = directory / "no_video_stream.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-y", str(corpus["no_video_stream"]))
    corpus["huge_frame"] = directory / "huge_frame.mp4"
    if pixel_bomb is None:
        make_pixel_bomb(corpus["huge_frame"])
    else:
        shutil.copyfile(pixel_bomb, corpus["huge_frame"])
    # Matroska written to a pipe has no duration in its header ("Duration: N/A").
    corpus["zero_duration_metadata"] = directory / "zero_duration_metadata.mkv"
    corpus["zero_duration_metadata"].write_bytes(
        _ffmpeg("-i", str(clip), "-c", "copy", "-f", "matroska", "pipe:1", stdout=subprocess.PIPE)
    )
    # Two frames ten hours apart: a header that declares 10 h for a few KB of content.
    corpus["long_declared_duration"] = _h264(
        "testsrc=size=640x480:rate=25",
        directory / "long_declared_duration.mkv",
        "-frames:v",
        "2",
        "-vf",
        "setpts=N*36000/TB",
        "-fps_mode",
        "passthrough",
    )
    data = clip.read_bytes()
    corpus["truncated"] = directory / "truncated.mp4"
    corpus["truncated"].write_bytes(data[: len(data) // 2])
    corpus["corrupt_header"] = directory / "corrupt_header.mp4"
    corpus["corrupt_header"].write_bytes(bytes(64) + data[64:])
    corpus["odd_dimensions"] = _h264(
        "testsrc=size=641x481:rate=25:duration=0.5", directory / "odd.mp4", pix_fmt="yuv444p"
    )
    corpus["rotation_metadata"] = directory / "rotation.mp4"
    _ffmpeg("-display_rotation", "90", "-i", str(clip), "-c", "copy", "-y", str(corpus["rotation_metadata"]))
    corpus["ten_bit"] = _h264(
        "testsrc=size=640x480:rate=25:duration=0.5", directory / "ten_bit.mp4", pix_fmt="yuv420p10le"
    )
    corpus["variable_frame_rate"] = _h264(
        "testsrc=size=640x480:rate=25:duration=1",
        directory / "vfr.mp4",
        "-vf",
        "setpts='N/25/TB+if(gt(N,10),0.5/TB,0)'",
        "-fps_mode",
        "vfr",
    )
    many = directory / "many_streams.mkv"
    tones = [arg for _ in range(20) for arg in ("-f", "lavfi", "-i", "sine=duration=0.5")]
    maps = [arg for index in range(21) for arg in ("-map", str(index))]
    _ffmpeg("-i", str(clip), *tones, *maps, "-c:v", "copy", "-c:a", "aac", "-y", str(many))
    corpus["many_streams"] = many
    # Hostile tags (issue 22): a title of 200,000 newlines (4.6 MB of ffmpeg's dump); tags that print a fake 25 fps,
    # 1 s stream before a real 1,000 fps one; corrupt frames titled like a failure of the machine.
    corpus["newline_metadata"] = make_newline_metadata_video(directory / "newlines.mp4", newlines=200_000)
    corpus["fake_stream_lines"] = make_fake_stream_lines_video(directory / "fake_stream_lines.mp4")
    corpus["corrupt_frames_hostile_title"] = make_corrupt_frames_video(
        directory / "corrupt_titled.mp4", title="No space left on device"
    )
    return corpus
