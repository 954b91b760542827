"""One time budget per invocation (issue 22, item 1): slow records never sink a batch, good ones are processed once.

A "slow" upload is a generated tiny-frame clip whose every ffmpeg run outlasts any time it is given (as a file that
decodes into hundreds of thousands of frames does): the ``slow_ffmpeg`` seam uses up the run's whole timeout, then
times out exactly as ``run_ffmpeg`` does. Everything else is real: moto, ffmpeg for the good clips, Powertools.

The invocation's time is read from an ``InvocationClock``: real time plus the timeouts the slow runs used up. The
slow runs advance it instead of sleeping (seconds of idle waiting per test), and the function's remaining time, the
handler's budget and the checks below all read it, so the real time the good clips take counts as it would.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from sqs_decoupling.lambda_consumer.runtime import handler
from sqs_decoupling.video import budget
from sqs_decoupling.video import ffmpeg as video_ffmpeg
from sqs_decoupling.video.errors import FfmpegTimeoutError
from tests.support.videos import cached_video_bytes
from tests.unit.lambdas.conftest import LambdaContext, Pipeline, sqs_event

GOOD = cached_video_bytes()
SLOW = cached_video_bytes(size="32x32", seconds=2)  # the tiny-frame upload
FUNCTION_TIMEOUT_S = 4.0


class InvocationClock:
    """``time.monotonic`` plus the seconds the slow ffmpeg runs used up without sleeping."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def advance(self, seconds: float) -> None:
        self.skipped += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> InvocationClock:
    """The clock every invocation's time budget runs on in these tests."""
    test_clock = InvocationClock()
    monkeypatch.setattr(handler, "invocation_budget", functools.partial(budget.invocation_budget, clock=test_clock))
    return test_clock


@pytest.fixture
def slow_ffmpeg(monkeypatch: pytest.MonkeyPatch, clock: InvocationClock) -> list[float]:
    """Every ffmpeg run on a SLOW source uses up its whole timeout on ``clock`` and times out; returns the timeouts
    given."""
    video_ffmpeg.h264_available()
    real_run = video_ffmpeg.run_ffmpeg
    timeouts: list[float] = []

    def run(args: Sequence[str], *, timeout: float, **options: Any) -> subprocess.CompletedProcess[str]:
        source = next((arg.removeprefix("file:") for arg in args if arg.startswith("file:")), None)
        if source is not None and Path(source).read_bytes() == SLOW:
            timeouts.append(timeout)
            clock.advance(timeout)
            raise FfmpegTimeoutError(timeout)
        return real_run(args, timeout=timeout, **options)

    monkeypatch.setattr(video_ffmpeg, "run_ffmpeg", run)
    return timeouts


@pytest.fixture
def small_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings the stack gives a 4 s function (ffmpeg's per-run base: a quarter of the timeout), and a
    proportionate margin."""
    monkeypatch.setenv("FFMPEG_TIME_BASE_SECONDS", str(FUNCTION_TIMEOUT_S / 4))
    monkeypatch.setattr(handler, "TIME_MARGIN_SECONDS", 0.5, raising=False)


def deliver(records: list[dict[str, Any]], receive_count: int, clock: InvocationClock) -> tuple[set[str], float]:
    """Invoke the handler as the event source mapping does on this delivery; return the message ids reported
    for retry and the seconds the invocation had left on ``clock`` when it returned (negative: Lambda would have
    killed it)."""
    for record in records:
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    context = LambdaContext(timeout_seconds=FUNCTION_TIMEOUT_S, clock=clock)
    try:
        response = handler.lambda_handler(sqs_event(records), context)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    except BatchProcessingError:  # every record failed: Lambda retries the whole batch
        failed = {record["messageId"] for record in records}
    left = context.started + FUNCTION_TIMEOUT_S - clock()
    return failed, left


def job_directories() -> list[Path]:
    return list((Path(tempfile.gettempdir()) / "video-processor").glob("video-*"))


@pytest.mark.usefixtures("small_function")
def test_a_batch_of_good_clips_and_slow_ones_ends_with_every_good_clip_processed_once_and_nothing_in_the_dlq(
    pipeline: Pipeline, slow_ffmpeg: list[float], clock: InvocationClock
) -> None:
    # GIVEN four good clips and five tiny-frame uploads that no ffmpeg run finishes (more than one 4 s invocation
    # can take), on a queue that dead-letters after 3 receives
    for index in range(4):
        pipeline.upload(f"uploads/good-{index}.mp4", GOOD)
    for index in range(5):
        pipeline.upload(f"uploads/slow-{index}.mp4", SLOW)
    pending = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]
    manifests: list[str] = []
    handler.s3_client().meta.events.register(
        "provide-client-params.s3.PutObject",
        lambda params, **_: manifests.append(params["Key"]) if params["Key"].endswith("manifest.json") else None,
    )

    # WHEN SQS delivers what is left, up to maxReceiveCount times
    time_left = []
    for receive_count in (1, 2, 3):
        if not pending:
            break
        failed, left = deliver(pending, receive_count, clock)
        time_left.append(left)
        pending = [record for record in pending if record["messageId"] in failed]

    # THEN no invocation ran past the function timeout, and no message is left for the DLQ
    assert min(time_left) > 0, time_left
    assert pending == []
    # AND each good clip was processed exactly once (one manifest written), on its first delivery
    keys = pipeline.output_keys()
    for index in range(4):
        good = [key for key in keys if f"good-{index}.mp4/" in key and key.endswith("manifest.json")]
        assert len(good) == 1
    assert sorted(manifests) == sorted(key for key in keys if key.endswith("manifest.json"))
    # AND each slow upload has a permanent failure record saying it ran out of time
    for index in range(5):
        (record_key,) = [key for key in keys if f"slow-{index}.mp4/" in key and key.endswith("failure.json")]
        assert pipeline.output_json(record_key)["reason"] in ("time_limit", "too_slow_for_lambda")
    # AND no ffmpeg run was given more than the function had left, and no job directory was left behind
    assert max(slow_ffmpeg) <= FUNCTION_TIMEOUT_S
    assert job_directories() == []


@pytest.mark.usefixtures("small_function")
def test_on_the_last_delivery_a_record_that_does_not_fit_gets_too_slow_for_lambda_instead_of_the_dlq(
    pipeline: Pipeline, slow_ffmpeg: list[float], clock: InvocationClock
) -> None:
    # GIVEN four slow uploads on their last delivery (receive count 3 = maxReceiveCount): more than one
    # invocation can start
    for index in range(4):
        pipeline.upload(f"uploads/slow-{index}.mp4", SLOW)
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]

    # WHEN the handler gets them
    failed, left = deliver(records, 3, clock)

    # THEN it returned in time and reported nothing for retry: every message is consumed
    assert left > 0 and failed == set()
    # AND those it started hit their own time ceiling; those it could not start are too_slow_for_lambda
    reasons = sorted(
        pipeline.output_json(key)["reason"] for key in pipeline.output_keys() if key.endswith("failure.json")
    )
    assert len(reasons) == 4
    assert "too_slow_for_lambda" in reasons
    assert set(reasons) <= {"time_limit", "too_slow_for_lambda"}
    too_slow = next(
        pipeline.output_json(key)
        for key in pipeline.output_keys()
        if key.endswith("failure.json") and pipeline.output_json(key)["reason"] == "too_slow_for_lambda"
    )
    assert "this Lambda invocation's remaining time" in too_slow["message"]


@pytest.mark.usefixtures("small_function")
def test_before_the_last_delivery_a_record_that_does_not_fit_is_retried_without_being_started(
    pipeline: Pipeline, slow_ffmpeg: list[float], clock: InvocationClock, handler_logs: Any
) -> None:
    # GIVEN four slow uploads on their first delivery
    for index in range(4):
        pipeline.upload(f"uploads/slow-{index}.mp4", SLOW)
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]

    # WHEN the handler gets them
    failed, left = deliver(records, 1, clock)

    # THEN it returned in time; the records it could not start are reported for retry, without a failure record
    assert left > 0
    recorded = {key for key in pipeline.output_keys() if key.endswith("failure.json")}
    assert len(failed) >= 1 and len(recorded) + len(failed) == 4
    # AND each is one WARNING line saying it waits for a later delivery, not an ERROR
    logs = [json.loads(line) for line in handler_logs.getvalue().splitlines()]
    deferred = [log for log in logs if log.get("error_type") == "OutOfTimeError"]
    assert {log["message_id"] for log in deferred} == failed
    assert {log["level"] for log in deferred} == {"WARNING"}


def test_job_directories_a_stopped_invocation_left_are_removed_by_the_next(
    pipeline: Pipeline, lambda_context: LambdaContext
) -> None:
    # GIVEN what an invocation Lambda stopped at its timeout leaves in /tmp: a job directory with its source
    stale = Path(tempfile.gettempdir()) / handler.JOB_DIRECTORY_NAME / "video-stopped"
    stale.mkdir(parents=True)
    (stale / "source").write_bytes(GOOD)
    pipeline.upload("uploads/clip.mp4", GOOD)
    records = [r for r in pipeline.deliveries() if "s3:TestEvent" not in r["body"]]

    # WHEN the next invocation runs in the same execution environment
    response = handler.lambda_handler(sqs_event(records), lambda_context)

    # THEN the stale directory is gone, and the invocation left none of its own
    assert response == {"batchItemFailures": []}
    assert job_directories() == []
