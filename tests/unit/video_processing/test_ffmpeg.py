"""Probing, thumbnails and renditions with the real bundled ffmpeg, on small generated clips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sqs_decoupling.contracts.profiles import Rendition
from sqs_decoupling.video import ffmpeg as video_ffmpeg
from sqs_decoupling.video.errors import FfmpegError, NotAVideoError
from sqs_decoupling.video.ffmpeg import VideoInfo, probe
from tests.support.videos import FEW_FRAMES_FPS, cached_video, make_test_video, media_info


def test_probe_reads_duration_size_codec_and_fps() -> None:
    # GIVEN a 1 s 160x120 H.264 clip at 25 fps, WHEN probed, THEN every field matches how it was made
    assert probe(cached_video()) == VideoInfo(
        duration=1.0,
        width=160,
        height=120,
        codec="h264",
        fps=25.0,
        container="mov,mp4,m4a,3gp,3g2,mj2",
        has_audio=False,
        rotation=0,
        streams=1,
    )


def test_probe_sees_audio_and_other_rates(tmp_path: Path) -> None:
    clip = make_test_video(tmp_path / "clip.mp4", seconds=0.5, size="320x240", fps=30, audio=True)
    info = probe(clip)
    assert (info.width, info.height, info.fps, info.has_audio) == (320, 240, 30.0, True)
    assert info.duration == pytest.approx(0.5, abs=0.05)


def test_probe_reports_the_displayed_size_of_a_rotated_phone_clip(tmp_path: Path) -> None:
    # GIVEN a landscape-encoded clip flagged to display rotated by 90 degrees (as phones record portrait)
    rotated = tmp_path / "rotated.mp4"
    flag_rotation = ["-display_rotation", "90", "-i", str(cached_video()), "-c", "copy", "-y", str(rotated)]
    subprocess.run([video_ffmpeg.ffmpeg_exe(), "-loglevel", "error", *flag_rotation], check=True, timeout=30)
    # WHEN probed, THEN width and height are those a viewer sees
    info = probe(rotated)
    assert (info.width, info.height, info.rotation) == (120, 160, 90)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"these are meeting notes\n" * 20, "cannot read it as a video"),
        (cached_video().read_bytes()[:4000], "cannot read it as a video"),  # truncated upload
        (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", "cannot read it as a video"),  # playlist
    ],
    ids=["text", "truncated-mp4", "hls-playlist"],
)
def test_probe_rejects_what_is_not_a_video(tmp_path: Path, content: bytes, reason: str) -> None:
    source = tmp_path / "source"
    source.write_bytes(content)
    with pytest.raises(NotAVideoError, match=reason):
        probe(source)


def test_probe_rejects_audio_only_files(tmp_path: Path) -> None:
    # GIVEN an M4A with only a sound track
    audio = tmp_path / "audio.m4a"
    subprocess.run(
        [video_ffmpeg.ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=0.5", "-y", str(audio)],
        check=True,
        timeout=30,
    )
    with pytest.raises(NotAVideoError, match="no video stream"):
        probe(audio)


@pytest.mark.parametrize(("size", "expected"), [("640x480", (320, 240)), ("160x120", (160, 120))])
def test_thumbnail_is_at_most_320_wide_and_never_upscaled(tmp_path: Path, size: str, expected: tuple[int, int]) -> None:
    source = cached_video(size=size)
    thumbnail = tmp_path / "thumbnail.jpg"
    video_ffmpeg.make_thumbnail(source, thumbnail, probe(source))
    assert media_info(thumbnail)["size"] == expected


def test_renditions_keep_aspect_ratio_with_even_dimensions_from_one_run(
    tmp_path: Path, ffmpeg_calls: list[list[str]]
) -> None:
    # GIVEN a 4:3 source with sound, WHEN 240p and 180p renditions are made
    source = cached_video(size="640x480", audio=True, fps=FEW_FRAMES_FPS)
    ladder = [Rendition(name="240p", short_side=240), Rendition(name="180p", short_side=180)]
    paths = video_ffmpeg.make_renditions(source, tmp_path, probe(source), ladder)
    # THEN one ffmpeg run made both: H.264, not stretched, even sizes, each with the sound
    assert [path.name for path in paths] == ["240p.mp4", "180p.mp4"]
    assert len(ffmpeg_calls) == 3  # the probe (a packet scan, one decoded frame), then one run for every rendition
    sizes = [(info["size"], info["codec"]) for info in map(media_info, paths)]
    assert sizes == [((320, 240), "h264"), ((240, 180), "h264")]
    assert all(probe(path).has_audio for path in paths)


def test_the_bundled_ffmpeg_has_libx264() -> None:
    # The imageio-ffmpeg build we pin ships libx264; the mpeg4 fallback exists for builds that do not.
    assert video_ffmpeg.h264_available()


def test_a_hung_ffmpeg_is_stopped_and_reported_as_transient() -> None:
    # GIVEN an ffmpeg run that would take far longer than its timeout (reading its input in real time, -re, it waits
    # for most of it, as a hung one does, instead of burning the timeout's CPU)
    with pytest.raises(FfmpegError, match="timed out"):
        video_ffmpeg.run_ffmpeg(["-re", "-f", "lavfi", "-i", "testsrc=duration=600", "-f", "null", "-"], timeout=0.2)
