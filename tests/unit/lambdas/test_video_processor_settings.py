"""The video processor's settings contract: parsed from a mapping, defaults, and errors that name the variable."""

from __future__ import annotations

import pytest

from sqs_decoupling.contracts.lambda_function import (
    DEFAULT_PROFILE,
    Settings,
    SettingsError,
    ffmpeg_memory_bytes,
    ffmpeg_time_base_seconds,
)
from sqs_decoupling.contracts.media import DEFAULT_LIMITS, DEFAULT_MAX_VIDEO_BYTES, MIB, MediaLimits


def test_only_the_output_bucket_is_required_and_everything_else_has_its_default():
    # GIVEN an environment with the output bucket only
    # WHEN it is parsed
    settings = Settings.from_environment({"OUTPUT_BUCKET": "processed"})
    # THEN every other setting is the contract's default
    assert settings == Settings(output_bucket="processed")
    assert (settings.max_video_bytes, settings.profile, settings.body_key_arn) == (
        DEFAULT_MAX_VIDEO_BYTES,
        DEFAULT_PROFILE,
        None,
    )
    assert settings.limits == DEFAULT_LIMITS


def test_settings_survive_a_round_trip_through_the_environment():
    # GIVEN settings that differ from every default
    settings = Settings(
        output_bucket="processed",
        max_video_bytes=5 * MIB,
        body_key_arn="arn:aws:kms:eu-west-1:123456789012:key/abc",
        profile="transcode",
        limits=MediaLimits(ffmpeg_memory_bytes=None, ffmpeg_threads=1, time_base_seconds=7.5),
    )
    # WHEN they are written as environment variables and parsed back
    # THEN nothing is lost
    assert Settings.from_environment(settings.environment()) == settings


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "OUTPUT_BUCKET is not set"),
        ({"OUTPUT_BUCKET": "b", "MAX_VIDEO_BYTES": "lots"}, "MAX_VIDEO_BYTES='lots' is not a whole number"),
        ({"OUTPUT_BUCKET": "b", "MAX_VIDEO_BYTES": "0"}, "MAX_VIDEO_BYTES=0 is out of range"),
        ({"OUTPUT_BUCKET": "b", "VIDEO_PROFILE": "4k"}, "VIDEO_PROFILE: unknown video profile '4k'"),
        ({"OUTPUT_BUCKET": "b", "FFMPEG_MEMORY_MIB": "64"}, "FFMPEG_MEMORY_MIB='64' is not allowed"),
        ({"OUTPUT_BUCKET": "b", "FFMPEG_THREADS": "two"}, "FFMPEG_THREADS='two' is not allowed"),
    ],
)
def test_a_bad_or_missing_variable_is_named_in_the_error(environ, named):
    # GIVEN an environment with one bad or missing variable
    # WHEN it is parsed
    with pytest.raises(SettingsError) as error:
        Settings.from_environment(environ)
    # THEN the error names the variable and what is wrong with it
    assert named in str(error.value)


def test_ffmpeg_gets_the_function_memory_less_the_handlers_share_and_a_quarter_of_the_timeout():
    assert ffmpeg_memory_bytes(2048) == 1536 * MIB
    assert ffmpeg_memory_bytes(512) == 128 * MIB  # MediaLimits' minimum, never less
    assert ffmpeg_time_base_seconds(120) == 30.0
    assert ffmpeg_time_base_seconds(20) == 5.0
