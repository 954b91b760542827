"""MediaLimits and the profile registry: their checks and what they derive."""

from __future__ import annotations

import pytest

from sqs_decoupling.contracts.media import MIB, MediaLimits
from sqs_decoupling.contracts.profiles import PROFILES, Rendition, UnknownProfileError, VideoProfile, get_profile
from sqs_decoupling.video.ffmpeg import VideoInfo, check_limits


def info(width: int = 1920, height: int = 1080, **fields: object) -> VideoInfo:
    values: dict[str, object] = {
        "duration": 10.0,
        "width": width,
        "height": height,
        "codec": "h264",
        "fps": 30.0,
        "container": "mov",
        "has_audio": True,
        "rotation": 0,
        "streams": 2,
    } | fields
    return VideoInfo(**values)  # type: ignore[arg-type]


def test_bad_limits_fail_naming_each_field_and_its_range() -> None:
    with pytest.raises(ValueError, match=r"ffmpeg_threads must be > 0 \(got 0\).*ffmpeg_memory_bytes must be None or"):
        MediaLimits(ffmpeg_threads=0, ffmpeg_memory_bytes=MIB)


@pytest.mark.parametrize(
    ("probed", "reason"),
    [
        (info(4097, 2160), "too_large_frame"),
        (info(4096, 4096), "too_large_frame"),  # both sides allowed, the area is not
        (info(fps=480.0), "too_high_frame_rate"),
        (info(duration=7201.0), "too_long"),
        (info(streams=17), "too_many_streams"),
    ],
)
def test_each_default_limit_is_a_permanent_failure_with_its_reason(probed: VideoInfo, reason: str) -> None:
    with pytest.raises(Exception, match="above") as error:
        check_limits(probed)
    assert getattr(error.value, "reason", None) == reason


def test_a_4k_phone_clip_is_within_the_default_limits() -> None:
    check_limits(info(2160, 3840, duration=None, fps=None))


def test_the_time_ceiling_grows_with_the_duration_up_to_the_duration_limit() -> None:
    limits = MediaLimits(time_base_seconds=30, time_per_media_second=10, max_duration_seconds=100)
    assert (limits.time_limit(5), limits.time_limit(None), limits.time_limit(10**6)) == (80, 1030, 1030)


def test_the_ladder_is_data_and_never_upscales() -> None:
    ladder = get_profile("transcode").renditions_for(854, 480)
    assert [rung.name for rung in ladder] == ["480p"]
    assert get_profile("preview").ladder == ()
    assert set(PROFILES) == {"preview", "transcode"}


def test_unknown_profiles_and_unsafe_names_are_refused_with_what_to_do() -> None:
    with pytest.raises(UnknownProfileError, match="choose one of preview, transcode"):
        get_profile("Transcode")
    with pytest.raises(ValueError, match="must match"):
        VideoProfile(name="../escape")
    with pytest.raises(ValueError, match="use shorter names"):
        VideoProfile(name="p", ladder=(Rendition(name="r" * 60, short_side=240),))
