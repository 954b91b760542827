"""Settings: flags, their environment variables, and the messages a user gets when one is wrong."""

from __future__ import annotations

import pytest

from worker.config import parse_settings, region_from_queue_url

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
    assert (settings.wait_seconds, settings.test_handler) == (20, None)


def test_a_bad_value_from_the_environment_is_rejected_like_a_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_settings([], {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "b", "WORKER_CONCURRENCY": "0"})
    assert exit_info.value.code == 2
    assert "--concurrency: 0 is outside 1..256" in capsys.readouterr().err


def test_the_body_key_comes_from_a_flag_or_the_environment_and_is_optional():
    base = {"WORKER_QUEUE_URL": QUEUE, "WORKER_OUTPUT_BUCKET": "processed"}
    arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert parse_settings([], base).body_key_arn is None
    assert parse_settings([], base | {"WORKER_BODY_KEY_ARN": ""}).body_key_arn is None
    assert parse_settings([], base | {"WORKER_BODY_KEY_ARN": arn}).body_key_arn == arn
    assert parse_settings(["--body-key-arn", arn], base | {"WORKER_BODY_KEY_ARN": "other"}).body_key_arn == arn


def test_the_test_handler_needs_no_output_bucket():
    settings = parse_settings(["--queue-url", QUEUE], {"WORKER_TEST_HANDLER": "sleep"})
    assert (settings.output_bucket, settings.test_handler) == (None, "sleep")


@pytest.mark.parametrize(
    ("url", "region"),
    [
        (QUEUE, "eu-west-1"),
        ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/jobs", "cn-north-1"),
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
