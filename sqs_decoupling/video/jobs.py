"""What a job is, and how it travels through SQS: as an S3 event notification.

Both S3 (for new uploads) and the producer CLI (for objects already in S3) send the same message shape, so a
consumer parses one format.

Parsing uses small pydantic models that reuse Powertools' ``S3Object``. Powertools' full ``S3Model`` /
``S3SqsEventNotificationModel`` are stricter than we want: they require ``userIdentity``,
``requestParameters``, ``responseElements`` and ``bucket.ownerIdentity``, which moto's notifications (and
our producer's) do not carry. The models below accept real S3 events (a superset) and those.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote_plus, unquote_plus

from aws_lambda_powertools.utilities.parser.models.s3 import S3Object
from pydantic import BaseModel, Field, ValidationError

from sqs_decoupling.contracts.profiles import PROFILE_SUFFIX_RESERVE_BYTES
from sqs_decoupling.video.errors import MalformedMessageError

OUTPUT_ROOT = "processed/"
# Keys whose full-form prefix would not fit go under processed/_hashed/<sha256 of the key>/ instead.
HASHED_ROOT = OUTPUT_ROOT + "_hashed/"
MAX_S3_KEY_BYTES = 1024
# Room kept after a key's folder: the version folder (S3 version ids are 32 bytes, ETags at most 45) and
# "<profile>/<file name>" (PROFILE_SUFFIX_RESERVE_BYTES, which profiles check that they fit). Fixed, so a key's
# folder never depends on the version.
VERSION_RESERVE_BYTES = 64


@dataclass(frozen=True)
class VideoJob:
    """One S3 object version to process. ``key`` is decoded (a real key, not the URL-encoded event form);
    ``etag`` is stored without the quotes S3 puts around it in responses."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int | None
    # The event's, not the object's: two events for one version are the same job (not compared).
    event_time: str | None = field(default=None, compare=False)
    """When S3 (or the producer) made the event, ISO 8601; orders versions of one key when there is no sequencer."""
    sequencer: str | None = field(default=None, compare=False)
    """S3's event sequencer (hexadecimal): orders the events of one key exactly (see :func:`newer_event`)."""

    def __post_init__(self) -> None:
        # Output keys must be deterministic per object version, so duplicates land on the same keys.
        if not self.version_id and not self.etag:
            raise ValueError(f"VideoJob s3://{self.bucket}/{self.key} needs a version_id or an etag")
        if self.etag:
            object.__setattr__(self, "etag", self.etag.strip('"'))

    @property
    def key_prefix(self) -> str:
        """This key's folder in the output bucket: ``processed/<key>/``, or ``processed/_hashed/<sha256 of the
        key>/`` when the full form would leave no room for a profile's output names under S3's 1,024-byte limit
        (the full key is in every manifest and failure record)."""
        full = f"{OUTPUT_ROOT}{self.key}/"
        if _utf8_len(full) + VERSION_RESERVE_BYTES + PROFILE_SUFFIX_RESERVE_BYTES <= MAX_S3_KEY_BYTES:
            return full
        return f"{HASHED_ROOT}{hashlib.sha256(self.key.encode()).hexdigest()}/"

    @property
    def output_prefix(self) -> str:
        """This version's folder: ``<key_prefix><version id or etag>/``; each profile writes in a subfolder."""
        return f"{self.key_prefix}{self.version_id or self.etag}/"

    def profile_prefix(self, profile: str) -> str:
        """Where ``profile``'s outputs for this version go: ``<output_prefix><profile>/``."""
        return f"{self.output_prefix}{profile}/"

    def latest_key(self, profile: str) -> str:
        """The one object that says what the newest outcome for this key and profile is (processed or failed)."""
        return f"{self.key_prefix}{profile}.latest.json"

    @property
    def fits(self) -> bool:
        """Whether this version's prefix leaves room for every profile's outputs (false only for absurd versions)."""
        return _utf8_len(self.output_prefix) + PROFILE_SUFFIX_RESERVE_BYTES <= MAX_S3_KEY_BYTES


def _utf8_len(text: str) -> int:
    return len(text.encode())


class _Bucket(BaseModel):
    name: str = Field(min_length=1)


class _S3Entity(BaseModel):
    bucket: _Bucket
    object: S3Object


class _Record(BaseModel):
    eventSource: Literal["aws:s3"]
    eventName: str
    eventTime: str | None = None
    s3: _S3Entity


class _Notification(BaseModel):
    Records: list[_Record] = Field(min_length=1)


class _TestEvent(BaseModel):
    Event: Literal["s3:TestEvent"]
    Bucket: str | None = None


IgnoredReason = Literal["s3_test_event", "folder_placeholder", "not_object_created"]


@dataclass(frozen=True)
class IgnoredInput:
    """A well-formed notification that names nothing to process: it is logged, counted and consumed.

    ``reason``: ``s3_test_event`` (S3 sends one when a notification is configured), ``folder_placeholder`` (the
    console's "Create folder" writes an empty object whose key ends in ``/``), ``not_object_created`` (another
    event type routed to the queue). ``key`` is the decoded object key, when there is one.
    """

    reason: IgnoredReason
    bucket: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class SqsBody:
    """What one SQS body asks for: the jobs to run and the inputs to ignore, in the order they came."""

    jobs: tuple[VideoJob, ...]
    ignored: tuple[IgnoredInput, ...]


def jobs_from_sqs_body(body: str) -> list[VideoJob]:
    """The jobs in an SQS body (see :func:`read_sqs_body`); ignored inputs are left out."""
    return list(read_sqs_body(body).jobs)


def read_sqs_body(body: str) -> SqsBody:
    """Parse an SQS body holding an S3 event notification into jobs and ignored inputs.

    A job per ``ObjectCreated:*`` record, except console folder placeholders (key ending in ``/``, 0 bytes);
    those, the ``s3:TestEvent`` and other event types are :class:`IgnoredInput`. Raises ``MalformedMessageError``
    for anything else.
    """
    try:
        data = json.loads(body)
    except json.JSONDecodeError as error:
        raise MalformedMessageError(f"body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise MalformedMessageError(f"body is JSON {type(data).__name__}, expected an object with 'Records'")
    if "Records" not in data:
        try:
            test_event = _TestEvent.model_validate(data)
        except ValidationError as error:
            raise MalformedMessageError("body has no 'Records' and is not an s3:TestEvent") from error
        return SqsBody(jobs=(), ignored=(IgnoredInput("s3_test_event", bucket=test_event.Bucket),))
    try:
        notification = _Notification.model_validate(data)
    except ValidationError as error:
        raise MalformedMessageError(f"not an S3 event notification: {_first_error(error)}") from error

    jobs: list[VideoJob] = []
    ignored: list[IgnoredInput] = []
    for record in notification.Records:
        obj = record.s3.object
        bucket = record.s3.bucket.name
        # S3 encodes keys like a form value ('+' for space); moto also encodes '/'.
        key = unquote_plus(obj.key)
        if not record.eventName.startswith("ObjectCreated:"):
            ignored.append(IgnoredInput("not_object_created", bucket=bucket, key=key))
            continue
        if key.endswith("/") and not obj.size:
            ignored.append(IgnoredInput("folder_placeholder", bucket=bucket, key=key))
            continue
        try:
            jobs.append(
                VideoJob(
                    bucket=bucket,
                    key=key,
                    version_id=obj.versionId or None,
                    etag=obj.eTag or None,
                    size=int(obj.size) if obj.size is not None else None,
                    event_time=record.eventTime,
                    sequencer=obj.sequencer or None,
                )
            )
        except ValueError as error:
            raise MalformedMessageError(str(error)) from error
    return SqsBody(jobs=tuple(jobs), ignored=tuple(ignored))


def newer_event(candidate: Mapping[str, str | None], current: Mapping[str, str | None]) -> bool | None:
    """Whether the event ``candidate`` (``{"sequencer": ..., "event_time": ...}``, as :func:`event_order` gives)
    came after ``current``, for the same key; None when they cannot be ordered (neither field on both).

    S3's sequencers order the events of one key exactly: right-pad the shorter with zeros, then compare (S3's
    documented rule). Otherwise the event times (millisecond precision) decide.
    """
    new_sequencer, old_sequencer = candidate.get("sequencer"), current.get("sequencer")
    if new_sequencer and old_sequencer:
        width = max(len(new_sequencer), len(old_sequencer))
        return new_sequencer.upper().ljust(width, "0") > old_sequencer.upper().ljust(width, "0")
    new_time, old_time = _parse_time(candidate.get("event_time")), _parse_time(current.get("event_time"))
    if new_time is None or old_time is None:
        return None
    return new_time > old_time


def event_order(job: VideoJob) -> dict[str, str | None]:
    """What orders ``job``'s event among the events of its key (see :func:`newer_event`)."""
    return {"sequencer": job.sequencer, "event_time": job.event_time}


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}"


def sqs_body_for(job: VideoJob, *, source: str = "sqs-submit") -> str:
    """Build the S3-event-notification body for ``job``, as S3 would send it (key URL-encoded).

    ``source`` goes into ``configurationId`` so a reader of the queue can tell these from S3's own events.
    """
    obj: dict[str, object] = {"key": quote_plus(job.key, safe="/")}
    if job.size is not None:
        obj["size"] = job.size
    if job.etag:
        obj["eTag"] = job.etag
    if job.version_id:
        obj["versionId"] = job.version_id
    if job.sequencer:
        obj["sequencer"] = job.sequencer
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": job.event_time or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": source,
            "bucket": {"name": job.bucket, "arn": f"arn:aws:s3:::{job.bucket}"},
            "object": obj,
        },
    }
    return json.dumps({"Records": [record]}, ensure_ascii=False, separators=(",", ":"))
