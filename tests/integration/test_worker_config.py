"""Settings: flags, their environment variables, and the messages a user gets when one is wrong."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sqs_decoupling.contracts import worker_sizing
from sqs_decoupling.contracts.media import DEFAULT_LIMITS, DEFAULT_MAX_VIDEO_BYTES, MIB, MediaLimits
from sqs_decoupling.contracts.worker import DEFAULT_PROFILE, MAX_CONCURRENCY
from sqs_decoupling.regions.resolution import region_from_queue_url
from sqs_decoupling.worker_fleet.worker.config import parse_settings

GIB = 1024 * MIB
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"


def test_every_setting_can_come_from_the_environment_and_a_flag_wins():
    environ = {
        "WORKER_QUEUE_URL": QUEUE,
        "WORKER_OUTPUT_BUCKET": "processed",
        "WORKER_CONCURRENCY": "8",
        "WORKER_VISIBILITY_TIMEOUT": "300",
        "WORKER_DRAIN_SECONDS": "600",
        "WORKER_LIFECYCLE_HOOK": "drain",
    }
    settings = parse_settings(["--concurrency", "2"], environ)
    assert (settings.queue_url, settings.output_bucket, settings.lifecycle_hook) == (QUEUE, "processed", "drain")
    assert (settings.concurrency, settings.visibility_timeout, settings.drain_seconds) == (2, 300, 600.0)
    assert settings.wait_seconds == 20


def test_a_bad_value_from_the_environment_is_rejected_like_a_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings([], {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "b", "WORKER_CONCURRENCY": "0"})
    assert exit_info.value.code == 2
    assert "--concurrency: 0 is outside 1..32" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["33", "256", "0"])
def test_concurrency_outside_the_shared_limit_exits_2_with_one_line_naming_the_flag_and_range(capsys, value):
    # GIVEN a concurrency the fleet stack would refuse too (one limit:
    # sqs_decoupling.contracts.worker_sizing.MAX_CONCURRENCY)
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(["--queue-url", QUEUE, "--output-bucket", "b", "--concurrency", value], {})
    # THEN one line on stderr names the flag and the range, and the exit code is 2
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"video-worker: error: argument --concurrency: {value} is outside 1..{MAX_CONCURRENCY} (see --help)"
    ]


def test_the_body_key_comes_from_a_flag_or_the_environment_and_is_optional():
    base = {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "processed"}
    arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert parse_settings([], base).body_key_arn is None
    assert parse_settings([], base | {"WORKER_BODY_KEY_ARN": ""}).body_key_arn is None
    assert parse_settings([], base | {"WORKER_BODY_KEY_ARN": arn}).body_key_arn == arn
    assert parse_settings(["--body-key-arn", arn], base | {"WORKER_BODY_KEY_ARN": "other"}).body_key_arn == arn


def test_a_missing_output_bucket_exits_2_naming_the_flag_and_the_variable(capsys):
    # GIVEN a queue URL but no output bucket, even with the variable the removed test seam used to read
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(["--queue-url", QUEUE], {"WORKER_TEST_HANDLER": "sleep"})
    # THEN one line says how to give it, and the exit code is 2
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "video-worker: error: the output bucket is missing: pass --output-bucket or set WORKER_OUTPUT_BUCKET "
        "(see --help)"
    ]


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (QUEUE, "eu-west-1"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/jobs", "cn-north-1"),
        ("https://eu-central-1.queue.amazonaws.com/123456789012/jobs", "eu-central-1"),  # the legacy form
        ("http://localhost:5000/123456789012/jobs", None),
    ],
)
def test_the_region_can_be_read_from_the_queue_url(url, region):
    assert region_from_queue_url(url) == region


def test_the_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings(["--help"], {})
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "exit codes: 0 stopped by SIGTERM or Ctrl-C after draining" in help_text
    assert "1 could not start" in help_text
    assert "2 a missing or invalid option" in help_text
    # AND where the region comes from, in the order it is looked for
    assert (
        "AWS region; default: WORKER_REGION, then AWS_REGION, then AWS_DEFAULT_REGION, then the AWS profile's region, "
        "then the region in the queue URL" in help_text
    )


def test_the_profile_and_the_media_limits_come_from_flags_or_the_environment():
    # GIVEN the worker's environment with a profile and two media limits, and a flag for a third
    environ = {
        "WORKER_QUEUE_URL": QUEUE,
        "WORKER_OUTPUT_BUCKET": "processed",
        "WORKER_PROFILE": "preview",
        "WORKER_FFMPEG_MEMORY_MIB": "1024",
        "WORKER_FFMPEG_TIME_BASE_SECONDS": "12.5",
    }
    # WHEN they are parsed
    settings = parse_settings(["--ffmpeg-threads", "1"], environ)
    # THEN the job runs that profile held to those limits, every other limit at its default
    assert settings.profile == "preview"
    assert settings.limits == MediaLimits(ffmpeg_memory_bytes=1024 * MIB, time_base_seconds=12.5, ffmpeg_threads=1)


def test_without_them_the_worker_transcodes_within_the_shared_defaults(monkeypatch):
    # GIVEN a 2-vCPU, 4 GiB machine (a c7g.large) and no concurrency or thread setting
    monkeypatch.setattr(worker_sizing, "machine_vcpus", lambda: 2)
    monkeypatch.setattr(worker_sizing, "machine_memory_bytes", lambda: 4 * GIB)
    settings = parse_settings([], {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "processed"})
    # THEN it transcodes 2 jobs at once, one ffmpeg thread each, within the shared limits otherwise
    assert (settings.profile, settings.limits) == (DEFAULT_PROFILE, replace(DEFAULT_LIMITS, ffmpeg_threads=1))
    assert (settings.concurrency, settings.max_video_bytes) == (2, DEFAULT_MAX_VIDEO_BYTES)


@pytest.mark.parametrize(
    ("machine", "argv", "environ", "concurrency", "threads"),
    [
        (8, ["--profile", "preview"], {"WORKER_FFMPEG_MEMORY_MIB": "8192"}, 7, 1),  # 64 GiB x 0.9 / 8 GiB
        (8, ["--profile", "preview"], {"WORKER_FFMPEG_MEMORY_MIB": "unlimited"}, 16, 1),  # no ceiling: no cap
        (8, [], {}, 8, 1),  # transcode: one job per vCPU
        (8, ["--profile", "preview"], {}, 16, 1),  # no encoding: two per vCPU
        (64, [], {}, 32, 2),  # capped at MAX_CONCURRENCY: the rest go to threads
        (8, [], {"WORKER_VCPUS": "2"}, 2, 4),  # sized for a 2-vCPU type (the stack's smallest): threads use 8
        (8, ["--concurrency", "4"], {"WORKER_FFMPEG_THREADS": "3"}, 4, 3),  # both given: kept
    ],
)
def test_default_concurrency_and_threads_follow_the_vcpus_and_the_profile(
    monkeypatch, machine, argv, environ, concurrency, threads
):
    monkeypatch.setattr(worker_sizing, "machine_vcpus", lambda: machine)
    monkeypatch.setattr(worker_sizing, "machine_memory_bytes", lambda: 64 * GIB)
    settings = parse_settings(argv, {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "b"} | environ)
    assert (settings.concurrency, settings.limits.ffmpeg_threads) == (concurrency, threads)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WORKER_PROFILE": "4k"}, "--profile: unknown video profile '4k'"),
        ({"WORKER_FFMPEG_MEMORY_MIB": "64"}, "WORKER_FFMPEG_MEMORY_MIB='64' is not allowed"),
        ({"WORKER_MAX_FPS": "fast"}, "WORKER_MAX_FPS='fast' is not allowed"),
    ],
)
def test_a_bad_profile_or_limit_is_a_usage_error_naming_it(capsys, environ, message):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings([], {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "b"} | environ)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_spot_notices_are_read_every_5_s_unless_told_otherwise_within_0_1_to_30(capsys):
    base = {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "processed"}
    # GIVEN no setting, a flag, or the environment: THEN AWS's 5 s, or the value given
    assert parse_settings([], base).spot_poll_seconds == 5.0
    assert parse_settings(["--spot-poll-seconds", "0.5"], base).spot_poll_seconds == 0.5
    assert parse_settings([], base | {"WORKER_SPOT_POLL_SECONDS": "2"}).spot_poll_seconds == 2.0
    # WHEN the value is outside 0.1..30 s THEN it is a usage error (exit 2) naming the option and the range
    for bad in ("0", "31"):
        with pytest.raises(SystemExit) as exit_info:
            parse_settings(["--spot-poll-seconds", bad], base)
        assert exit_info.value.code == 2
        assert f"--spot-poll-seconds: {float(bad):g} is outside 0.1..30 seconds" in capsys.readouterr().err


def test_the_launch_hook_is_optional_and_comes_from_a_flag_or_the_environment():
    base = {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "processed"}
    assert parse_settings([], base).launch_hook is None
    assert parse_settings([], base | {"WORKER_LAUNCH_HOOK": "worker-started"}).launch_hook == "worker-started"
    assert parse_settings(["--launch-hook", "started"], base).launch_hook == "started"


def test_the_variable_an_earlier_release_read_for_the_video_size_is_refused_naming_its_new_name(capsys):
    # GIVEN an environment written for the earlier release (WORKER_MAX_BYTES, now WORKER_MAX_VIDEO_BYTES)
    environ = {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "b", "WORKER_MAX_BYTES": "1000"}
    # WHEN the worker parses its settings
    with pytest.raises(SystemExit) as exit_info:
        parse_settings([], environ)
    # THEN it stops with exit code 2 and one line naming both names, rather than run with the default limit
    assert exit_info.value.code == 2
    assert "WORKER_MAX_BYTES was renamed WORKER_MAX_VIDEO_BYTES" in capsys.readouterr().err
