"""The latest pointer only moves forward, and each version's failure record is written once (issue 22, item 5).

moto 5.2.5 enforces both S3 conditional writes on PutObject (``If-None-Match: *`` and ``If-Match: <etag>``, both
answered 412 PreconditionFailed), so the compare-and-swap runs against it; a second client plays the other writer.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import pytest

from sqs_decoupling.video.errors import ObjectGoneError
from sqs_decoupling.video.jobs import VideoJob, newer_event
from sqs_decoupling.video.processing import process_video, record_failure
from tests.support.videos import cached_video_bytes
from tests.unit.video_processing.buckets import LIMIT, OUTPUT, buckets, output_keys, read_json, upload  # noqa: F401
from tools.localcloud.server import REGION

LATEST = "processed/uploads/clip.mp4/preview.latest.json"


def with_event(job: VideoJob, event_time: str, sequencer: str | None = None) -> VideoJob:
    return dataclasses.replace(job, event_time=event_time, sequencer=sequencer)


def test_an_older_version_finishing_late_does_not_replace_the_newer_one(buckets: Any) -> None:  # noqa: F811
    # GIVEN two versions of one key, uploaded one after the other
    older = with_event(upload(buckets, "uploads/clip.mp4", cached_video_bytes()), "2026-12-01T10:00:00.000Z", "0A1")
    newer = with_event(
        upload(buckets, "uploads/clip.mp4", cached_video_bytes(size="320x240")), "2026-12-01T10:00:00.000Z", "0A2"
    )

    # WHEN the newer one finishes first and the older one last
    process_video(newer, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)
    process_video(older, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)

    # THEN both have their outputs, and the pointer still names the newer version (by S3's sequencer)
    latest = read_json(buckets, LATEST)
    assert (latest["state"], latest["source"]["version_id"]) == ("processed", newer.version_id)
    assert len({key for key in output_keys(buckets) if key.endswith("manifest.json")}) == 2


def test_a_failure_of_an_older_version_recorded_late_does_not_replace_the_newer_success(buckets: Any) -> None:  # noqa: F811
    # GIVEN a newer version processed, and an older one found gone afterwards (events ordered by time: moto's
    # events carry no sequencer)
    older = with_event(upload(buckets, "uploads/clip.mp4", cached_video_bytes()), "2026-12-01T10:00:00.000Z")
    newer = with_event(
        upload(buckets, "uploads/clip.mp4", cached_video_bytes(size="320x240")), "2026-12-01T10:00:01.000Z"
    )
    process_video(newer, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)

    # WHEN the older version's failure is recorded
    record = record_failure(
        older, ObjectGoneError("gone"), message_id="m-1", s3_client=buckets, output_bucket=OUTPUT, profile="preview"
    )

    # THEN its record is kept as history, but the pointer still names the newer success
    assert record is not None and record in output_keys(buckets)
    assert read_json(buckets, LATEST)["source"]["version_id"] == newer.version_id


def test_a_version_with_a_manifest_never_gets_a_failure_record(buckets: Any) -> None:  # noqa: F811
    # GIVEN a version processed by one consumer
    job = with_event(upload(buckets, "uploads/clip.mp4", cached_video_bytes()), "2026-12-01T10:00:00.000Z")
    process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)

    # WHEN another delivery of the same version fails afterwards (e.g. the upload was deleted since)
    record = record_failure(
        job, ObjectGoneError("gone"), message_id="m-2", s3_client=buckets, output_bucket=OUTPUT, profile="preview"
    )

    # THEN no failure record is written beside the manifest, and the pointer still says processed
    assert record is None
    assert not any(key.endswith("failure.json") for key in output_keys(buckets))
    assert read_json(buckets, LATEST)["state"] == "processed"


def test_a_writer_that_loses_the_compare_and_swap_reads_again_and_keeps_the_newer_pointer(buckets: Any) -> None:  # noqa: F811
    # GIVEN a pointer at an old version, and another consumer that writes a newer version's pointer in the
    # moment between this consumer's read and its conditional write
    old = with_event(upload(buckets, "uploads/clip.mp4", b"x" * 10), "2026-12-01T10:00:00.000Z")
    mine = with_event(upload(buckets, "uploads/clip.mp4", b"y" * 10), "2026-12-01T10:00:01.000Z")
    theirs = with_event(upload(buckets, "uploads/clip.mp4", b"z" * 10), "2026-12-01T10:00:02.000Z")
    record_failure(
        old, ObjectGoneError("gone"), message_id="m-0", s3_client=buckets, output_bucket=OUTPUT, profile="preview"
    )
    other = boto3.client("s3", region_name=REGION)
    attempts: list[dict[str, Any]] = []

    def race(params: dict[str, Any], **_: Any) -> None:
        if params["Key"] == LATEST:
            attempts.append({name: params.get(name) for name in ("IfMatch", "IfNoneMatch")})
            if len(attempts) == 1:
                record_failure(
                    theirs,
                    ObjectGoneError("gone"),
                    message_id="m-2",
                    s3_client=other,
                    output_bucket=OUTPUT,
                    profile="preview",
                )

    buckets.meta.events.register("provide-client-params.s3.PutObject", race)

    # WHEN this consumer records its (older than theirs) version's failure
    record_failure(
        mine, ObjectGoneError("gone"), message_id="m-1", s3_client=buckets, output_bucket=OUTPUT, profile="preview"
    )

    # THEN its write was conditional on the ETag it read, was refused, and after reading again it did not
    # overwrite the newer pointer
    assert len(attempts) == 1 and attempts[0]["IfMatch"] is not None
    assert read_json(buckets, LATEST)["source"]["version_id"] == theirs.version_id


def test_failure_records_are_written_once_per_version(buckets: Any) -> None:  # noqa: F811
    # GIVEN a permanent failure recorded on a message's first delivery
    job = with_event(upload(buckets, "uploads/clip.mp4", b"notes"), "2026-12-01T10:00:00.000Z")
    first = record_failure(
        job, ObjectGoneError("gone"), message_id="m-1", s3_client=buckets, output_bucket=OUTPUT, profile="preview"
    )
    etag = buckets.head_object(Bucket=OUTPUT, Key=first)["ETag"]

    # WHEN redeliveries record it again
    for message_id in ("m-2", "m-3"):
        record_failure(
            job,
            ObjectGoneError("gone"),
            message_id=message_id,
            s3_client=buckets,
            output_bucket=OUTPUT,
            profile="preview",
        )

    # THEN the record is the first one, untouched
    assert buckets.head_object(Bucket=OUTPUT, Key=first)["ETag"] == etag
    assert json.loads(buckets.get_object(Bucket=OUTPUT, Key=first)["Body"].read())["message_id"] == "m-1"


@pytest.mark.parametrize(
    ("candidate", "current", "newer"),
    [
        ({"sequencer": "0055AED6DCD90281E5"}, {"sequencer": "0055AED6DCD90281E4"}, True),
        ({"sequencer": "0055AED6DCD90281E5"}, {"sequencer": "0055AED6DCD90281E50"}, False),  # padded: equal
        ({"sequencer": "0055AED6DCD90281E6"}, {"sequencer": "0055AED6DCD90281E50"}, True),
        ({"event_time": "2026-12-01T10:00:00.001Z"}, {"event_time": "2026-12-01T10:00:00.000Z"}, True),
        ({"event_time": "2026-12-01T09:59:59.999Z"}, {"event_time": "2026-12-01T10:00:00.000Z"}, False),
        ({}, {"event_time": "2026-12-01T10:00:00.000Z"}, None),
    ],
)
def test_events_of_one_key_are_ordered_by_sequencer_then_event_time(
    candidate: dict[str, str], current: dict[str, str], newer: bool | None
) -> None:
    # GIVEN two events of one key / WHEN compared / THEN S3's rule (right-pad, compare) decides, else the time
    assert newer_event(candidate, current) is newer
