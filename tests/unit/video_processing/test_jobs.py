"""Parsing S3 event notifications from SQS bodies into jobs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sqs_decoupling.video.errors import MalformedMessageError
from sqs_decoupling.video.jobs import IgnoredInput, VideoJob, jobs_from_sqs_body, read_sqs_body, sqs_body_for


def notification(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def created(key: str, *, event: str = "ObjectCreated:Put", **obj: Any) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event,
        "s3": {"bucket": {"name": "uploads"}, "object": {"key": key, "size": 10, "eTag": "abc", **obj}},
    }


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("uploads%2FMy+Clip%2B1+%C3%A9.mp4", "uploads/My Clip+1 é.mp4"),  # moto: '/' encoded too
        ("uploads/My+Clip%2B1+%C3%A9.mp4", "uploads/My Clip+1 é.mp4"),  # real S3: '/' left alone
        ("uploads/a%25b.mp4", "uploads/a%b.mp4"),
        ("plain.mp4", "plain.mp4"),
    ],
)
def test_keys_are_url_decoded(encoded: str, decoded: str) -> None:
    # GIVEN / WHEN an event whose key S3 encoded like a form value
    (job,) = jobs_from_sqs_body(notification(created(encoded)))
    # THEN the job names the real key
    assert job.key == decoded


def test_a_real_s3_event_parses_with_version_and_quoted_etag_stripped() -> None:
    # GIVEN an event as real S3 sends it (all fields, versioned bucket), with a quoted ETag as HEAD returns
    record = created("uploads/clip.mp4", versionId="3HL4kqtJvjVBH40Nrjfkd", eTag='"d41d8cd98f00b204"', size=1024)
    record |= {
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-27T12:00:00.000Z",
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.5"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjsk"},
    }
    record["s3"] |= {"s3SchemaVersion": "1.0", "configurationId": "uploads-to-queue"}
    record["s3"]["bucket"] |= {"ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": "arn:aws:s3:::uploads"}

    # WHEN it is parsed
    (job,) = jobs_from_sqs_body(notification(record))

    # THEN the job is the exact object version, and its outputs go under that version
    assert job == VideoJob(
        bucket="uploads", key="uploads/clip.mp4", version_id="3HL4kqtJvjVBH40Nrjfkd", etag="d41d8cd98f00b204", size=1024
    )
    assert job.output_prefix == "processed/uploads/clip.mp4/3HL4kqtJvjVBH40Nrjfkd/"
    assert job.profile_prefix("transcode") == "processed/uploads/clip.mp4/3HL4kqtJvjVBH40Nrjfkd/transcode/"
    assert job.latest_key("transcode") == "processed/uploads/clip.mp4/transcode.latest.json"


def test_without_a_version_the_output_prefix_uses_the_etag() -> None:
    (job,) = jobs_from_sqs_body(notification(created("a.mp4", eTag="0123abcd-2")))
    assert job.output_prefix == "processed/a.mp4/0123abcd-2/"


def test_s3_test_event_gives_no_jobs() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-27T12:00:00Z", "Bucket": "b"})
    assert jobs_from_sqs_body(body) == []


def test_only_object_created_records_become_jobs() -> None:
    # GIVEN a notification with a creation, a deletion and a restore
    body = notification(
        created("new.mp4"),
        created("old.mp4", event="ObjectRemoved:Delete"),
        created("cold.mp4", event="ObjectRestore:Completed"),
    )
    # WHEN / THEN only the creation is a job
    assert [job.key for job in jobs_from_sqs_body(body)] == ["new.mp4"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "body is not JSON"),
        ("[1, 2]", "expected an object"),
        ('{"hello": "world"}', "not an s3:TestEvent"),
        ('{"Event": "s3:SomethingElse"}', "not an s3:TestEvent"),
        ('{"Records": []}', "Records"),
        ('{"Records": [{"eventSource": "aws:sqs", "eventName": "ObjectCreated:Put"}]}', "eventSource"),
        (notification({**created("a.mp4"), "s3": {"bucket": {"name": "b"}, "object": {}}}), "key"),
        (notification(created("a.mp4", eTag=None)), "needs a version_id or an etag"),
    ],
)
def test_anything_else_is_malformed(body: str, message: str) -> None:
    # GIVEN a body that is not an S3 event notification we understand, WHEN parsed, THEN it is rejected, not skipped
    with pytest.raises(MalformedMessageError, match=message):
        jobs_from_sqs_body(body)


def test_sqs_body_for_round_trips_through_the_parser() -> None:
    # GIVEN a job for an awkward key
    job = VideoJob(bucket="uploads", key="dir/My Clip+1 é.mp4", version_id="v1", etag="e1", size=42)
    # WHEN it is encoded the way S3 sends events and parsed back
    body = sqs_body_for(job)
    # THEN the key is encoded as S3 does it ('/' kept, '+' for space) and the job survives intact
    assert "dir/My+Clip%2B1+%C3%A9.mp4" in body
    assert jobs_from_sqs_body(body) == [job]


def test_a_quoted_etag_as_head_object_returns_it_is_stored_unquoted() -> None:
    job = VideoJob(bucket="b", key="a.mp4", version_id=None, etag='"0123abcd"', size=1)
    assert job == VideoJob(bucket="b", key="a.mp4", version_id=None, etag="0123abcd", size=1)
    assert job.output_prefix == "processed/a.mp4/0123abcd/"


def test_a_job_without_version_or_etag_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a version_id or an etag"):
        VideoJob(bucket="b", key="k", version_id=None, etag=None, size=None)


def test_test_events_placeholders_and_other_events_are_ignored_inputs_with_their_reason() -> None:
    # GIVEN S3's test event, and a notification with a video, a console folder placeholder (encoded as moto and
    # S3 do), a deletion, and an object whose key ends in "/" but has bytes
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "uploads"})
    body = notification(
        created("uploads/clip.mp4"),
        created("uploads%2Fnew+folder%2F", size=0),
        created("uploads/old.mp4", event="ObjectRemoved:Delete"),
        created("uploads/odd/", size=10),
    )

    # WHEN they are read
    from_test_event, from_notification = read_sqs_body(test_event), read_sqs_body(body)

    # THEN the test event and the placeholder are ignored, with the decoded key; an object with bytes is a job
    assert from_test_event.jobs == ()
    assert from_test_event.ignored == (IgnoredInput("s3_test_event", bucket="uploads"),)
    assert [job.key for job in from_notification.jobs] == ["uploads/clip.mp4", "uploads/odd/"]
    assert from_notification.ignored == (
        IgnoredInput("folder_placeholder", bucket="uploads", key="uploads/new folder/"),
        IgnoredInput("not_object_created", bucket="uploads", key="uploads/old.mp4"),
    )
    # AND the jobs-only view leaves the ignored inputs out
    assert [job.key for job in jobs_from_sqs_body(body)] == ["uploads/clip.mp4", "uploads/odd/"]
