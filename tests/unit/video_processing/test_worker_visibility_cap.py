"""Every worker job ends before SQS's 12-hour visibility cap (issue 22, item 4): the job's budget counts from the
message's first receive, a video whose time limit from the probe exceeds what is left is refused (``too_long``), no
ffmpeg run is given more, and no heartbeat asks SQS to extend past the cap."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

from sqs_decoupling.contracts.sqs import JOB_CAP_MARGIN_SECONDS, MAX_VISIBILITY_TIMEOUT_SECONDS
from sqs_decoupling.video.ffmpeg import ffmpeg_exe
from sqs_decoupling.video.jobs import VideoJob, sqs_body_for
from sqs_decoupling.worker_fleet.worker.consumer import QueueWorker, WorkerOptions, _Running
from sqs_decoupling.worker_fleet.worker.job import JobOutcome, Message
from sqs_decoupling.worker_fleet.worker.video_jobs import job_budget, make_video_handler
from tests.support.videos import cached_video_bytes
from tests.unit.video_processing.buckets import OUTPUT, SOURCE, output_keys, read_json


def two_hour_clip(path: Path) -> bytes:
    """Two 640x480 frames 7,000 s apart: a header that declares just under the 2 h media limit, so the probe
    passes it and the transcode's time limit is 30 s + 10 s x 7,000 s = 70,030 s (past the 12-hour cap)."""
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=25",
         "-frames:v", "2", "-vf", "setpts=N*7000/TB", "-fps_mode", "passthrough", "-c:v", "libx264",
         "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-y", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path.read_bytes()


def message_for(buckets: Any, key: str, body: bytes, *, first_received_seconds_ago: float) -> Message:
    version = buckets.put_object(Bucket=SOURCE, Key=key, Body=body)["VersionId"]
    job = VideoJob(bucket=SOURCE, key=key, version_id=version, etag=None, size=len(body))
    return Message(
        message_id=f"m-{key}",
        receipt_handle="r-1",
        body=sqs_body_for(job),
        receive_count=1,
        first_receive_epoch_seconds=time.time() - first_received_seconds_ago,
    )


def test_a_video_whose_time_limit_exceeds_the_visibility_cap_is_refused_from_the_probe(
    buckets: Any, tmp_path: Path, ffmpeg_calls: list[list[str]]
) -> None:
    # GIVEN the worker's transcode job, and an upload declaring 7,000 s of video, received a minute ago
    handler = make_video_handler(s3_client=buckets, output_bucket=OUTPUT, max_bytes=10**8, workdir=tmp_path)
    message = message_for(
        buckets, "uploads/long.mkv", two_hour_clip(tmp_path / "long.mkv"), first_received_seconds_ago=60
    )

    # WHEN the worker runs it
    outcome = handler(message)

    # THEN it is a permanent failure, too_long, decided by the probe alone (nothing decoded), naming both figures
    assert outcome is JobOutcome.PERMANENT_FAILURE
    (record_key,) = [key for key in output_keys(buckets) if key.endswith("failure.json")]
    record = read_json(buckets, record_key)
    assert record["reason"] == "too_long"
    # (the thumbnail's 30 s + the renditions' 30 s + 10 s x 7,000 s, against 12 h less the margin and the minute)
    assert "may take up to 70,060 s for 7,000 s of video" in record["message"]
    assert re.search(r"more than the 42,5\d\d s SQS's 12-hour visibility cap", record["message"])
    # only the probe ran (its packet scan, and its one-frame decode when the coded size passes): no transcode
    assert 1 <= len(ffmpeg_calls) <= 2
    assert not [call for call in ffmpeg_calls if any(str(a).endswith(".mp4") and "file:" not in str(a) for a in call)]


def test_a_redelivery_near_the_cap_is_refused_rather_than_run_past_it(buckets: Any, tmp_path: Path) -> None:
    # GIVEN a short good clip whose message was first received 11 h 55 min ago (a crashed worker held it)
    handler = make_video_handler(s3_client=buckets, output_bucket=OUTPUT, max_bytes=10**8, workdir=tmp_path)
    message = message_for(
        buckets, "uploads/late.mp4", cached_video_bytes(size="640x480"), first_received_seconds_ago=43_200 - 300
    )

    # WHEN a worker receives it again
    outcome = handler(message)

    # THEN it is recorded as too_long instead of running past what SQS can keep hidden
    assert outcome is JobOutcome.PERMANENT_FAILURE
    (record_key,) = [key for key in output_keys(buckets) if key.endswith("failure.json")]
    assert read_json(buckets, record_key)["reason"] == "too_long"


def test_a_jobs_budget_ends_a_margin_before_twelve_hours_from_the_first_receive() -> None:
    # GIVEN a message first received at t=1,000 (epoch seconds), seen at t=2,000
    message = Message("m-1", "r-1", "{}", 2, first_receive_epoch_seconds=1_000.0)
    # WHEN its job's budget is made / THEN it ends at the cap less the margin, and running out is final
    budget = job_budget(message, clock=lambda: 2_000.0)
    assert budget.deadline == 1_000 + MAX_VISIBILITY_TIMEOUT_SECONDS - JOB_CAP_MARGIN_SECONDS
    assert budget.remaining() == 43_200 - 600 - 1_000
    assert (budget.final, budget.out_of_time_reason) == (True, "too_long")


class RecordingSqs:
    """Records the VisibilityTimeout each ChangeMessageVisibilityBatch entry asks for."""

    def __init__(self) -> None:
        self.timeouts: list[int] = []

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.timeouts.extend(entry["VisibilityTimeout"] for entry in Entries)
        return {"Successful": [], "Failed": []}


def test_a_heartbeat_never_asks_for_visibility_past_the_cap() -> None:
    # GIVEN a job whose message was first received 43,190 s ago (10 s before the cap), visibility 300 s
    sqs = RecordingSqs()
    now = 1_000_000.0
    worker = QueueWorker(
        sqs,  # type: ignore[arg-type]
        "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
        lambda message: JobOutcome.DONE,
        WorkerOptions(visibility_timeout=300),
        clock=lambda: now,
        wall_clock=lambda: now,
    )
    message = Message("m-1", "r-1", "{}", 1, first_receive_epoch_seconds=now - 43_190)
    worker._running["r-1"] = _Running(message, visibility_set_at=now - 200)

    # WHEN its heartbeat is due
    worker._heartbeat()

    # THEN it asks only for what is left before the cap, not for another 300 s that SQS would refuse
    assert sqs.timeouts == [10]
