"""Process one video job end to end: check, download, probe, make outputs, upload, record completion.

Delivery is at least once, so this is idempotent: outputs go under keys derived from the object version and the
profile, and ``manifest.json``, written last with a conditional put, marks them complete. A set of outputs without
a manifest is partial and gets redone.

Layout in the output bucket, per source key (``<key folder>`` is ``processed/<key>/``, or
``processed/_hashed/<sha256 of the key>/`` for keys too long for S3's 1,024-byte limit once outputs are added)::

    <key folder><version id or ETag>/<profile>/metadata.json, thumbnail.jpg, <rendition>.mp4, manifest.json
    <key folder><version id or ETag>/<profile>/failure.json      why that version can never succeed
    <key folder><profile>.latest.json                            the newest outcome: processed or failed

Each is written once per version: the manifest and the failure record with ``If-None-Match: *`` (a version with a
manifest never gets a failure record), and the latest pointer by compare-and-swap (``If-Match`` its ETag) that
only moves forward: to a newer event of the key (S3's sequencer, else the event time), or from a version's failure
to the same version's success; an older version finishing late never replaces a newer one.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from sqs_decoupling.contracts.media import DEFAULT_LIMITS, MediaLimits
from sqs_decoupling.contracts.profiles import (
    FAILURE_NAME,
    MANIFEST_NAME,
    METADATA_NAME,
    THUMBNAIL_NAME,
    VideoProfile,
    get_profile,
)
from sqs_decoupling.video import ffmpeg
from sqs_decoupling.video.budget import TimeBudget
from sqs_decoupling.video.errors import (
    EmptyObjectError,
    ObjectGoneError,
    ObjectReplacedError,
    OutOfTimeError,
    OutputKeyTooLongError,
    PermanentJobError,
    ResourceCeilingError,
    TooLargeError,
)
from sqs_decoupling.video.jobs import MAX_S3_KEY_BYTES, VideoJob, event_order, newer_event

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# A profile name from sqs_decoupling.contracts.profiles.PROFILES ("preview", "transcode"), or a VideoProfile.
Profile = str | VideoProfile

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket"})
# A consumer role without s3:ListBucket on the uploads bucket (the deployed ones) gets 403 for a missing key.
_FORBIDDEN = frozenset({"403", "AccessDenied", "Forbidden"})
# Another writer won a conditional write (412), or was writing the same key at the same moment (409).
_LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_LATEST_ATTEMPTS = 5
_STATE_RANK = {"failed": 0, "processed": 1}
WORKSPACE_PREFIX = "video-"
"""The name prefix of each job's temporary directory (removed when the job ends, whatever the outcome)."""
_CONTENT_TYPES = {".json": "application/json", ".jpg": "image/jpeg", ".mp4": "video/mp4"}


@dataclass(frozen=True)
class JobResult:
    """What ``process_video`` did. ``outputs`` are keys in the output bucket, the manifest last."""

    job: VideoJob
    outputs: tuple[str, ...]
    duplicate: bool
    seconds: float
    metadata: dict[str, Any]


def process_video(
    job: VideoJob,
    *,
    s3_client: S3Client,
    output_bucket: str,
    profile: Profile,
    max_bytes: int,
    workdir: Path | None = None,
    limits: MediaLimits = DEFAULT_LIMITS,
    budget: TimeBudget | None = None,
) -> JobResult:
    """Make ``profile``'s outputs for ``job`` under ``job.profile_prefix(profile)`` in ``output_bucket``.

    ``preview``: metadata.json + thumbnail.jpg. ``transcode``: those + 720p.mp4 / 480p.mp4 (never upscaled).
    ``limits`` bound what one input may use (default :data:`~sqs_decoupling.contracts.media.DEFAULT_LIMITS`); ``budget``
    (default: none) is the time this delivery has left, see :mod:`sqs_decoupling.video.budget`.
    Raises ``PermanentJobError`` subclasses (their ``profile`` set, for :func:`record_failure`) for inputs that can
    never succeed, ``OutOfTimeError`` for one that does not fit in ``budget`` (the caller decides whether that is
    final); ``UnknownProfileError`` for a profile name not in the registry; anything else is transient.
    The work directory is removed on every way out.
    """
    chosen = get_profile(profile)
    try:
        return _process(job, s3_client, output_bucket, chosen, max_bytes, workdir, limits, budget)
    except PermanentJobError as error:
        error.profile = chosen.name
        raise


def _process(
    job: VideoJob,
    s3_client: S3Client,
    output_bucket: str,
    profile: VideoProfile,
    max_bytes: int,
    workdir: Path | None,
    limits: MediaLimits,
    budget: TimeBudget | None,
) -> JobResult:
    started = time.monotonic()
    if not job.fits:
        raise OutputKeyTooLongError(
            f"the output keys for version {job.version_id or job.etag!r} would exceed S3's {MAX_S3_KEY_BYTES}-byte "
            "limit even with the key hashed"
        )
    prefix = job.profile_prefix(profile.name)
    manifest_key = prefix + MANIFEST_NAME
    # Idempotency first: a duplicate delivery costs one GET, even when the source has since been deleted.
    manifest = _read_json(s3_client, output_bucket, manifest_key)
    if manifest is not None:
        return JobResult(
            job=job,
            outputs=tuple(manifest["outputs"]),
            duplicate=True,
            seconds=time.monotonic() - started,
            metadata=manifest["metadata"],
        )

    # Not started without the probe's time: reported before anything is downloaded.
    _budget_limits(budget, limits, 0.0, needed=min(ffmpeg.PROBE_TIMEOUT_S, limits.time_base_seconds))
    version_id = _check_source(s3_client, job, max_bytes)
    with tempfile.TemporaryDirectory(prefix=WORKSPACE_PREFIX, dir=workdir) as tmp:
        source = _download(s3_client, job, version_id, Path(tmp))
        with _budget_stage(budget, limits, 0.0, "the probe") as probe_limits:
            info = ffmpeg.probe(source, probe_limits)
        ffmpeg.check_limits(info, limits)
        _check_fits(budget, profile, limits, info)
        metadata = {"profile": profile.name, "source": _source(job), "video": asdict(info)}
        files = _make_outputs(source, Path(tmp) / "out", info, metadata, profile, limits, budget)
        outputs = [prefix + path.name for path in files]
        for path, key in zip(files, outputs, strict=True):
            s3_client.upload_file(str(path), output_bucket, key, ExtraArgs={"ContentType": _CONTENT_TYPES[path.suffix]})

    outputs.append(manifest_key)
    duplicate = _complete(s3_client, output_bucket, job, profile.name, outputs, metadata)
    return JobResult(
        job=job, outputs=tuple(outputs), duplicate=duplicate, seconds=time.monotonic() - started, metadata=metadata
    )


def _download(s3_client: S3Client, job: VideoJob, version_id: str | None, workspace: Path) -> Path:
    # No file extension: ffmpeg must recognise the container from its bytes, not from the upload's name.
    source = workspace / "source"
    try:
        s3_client.download_file(
            job.bucket, job.key, str(source), ExtraArgs={"VersionId": version_id} if version_id else None
        )
    except ClientError as error:
        _raise_gone_if_not_found(error, job)
        raise
    return source


def _complete(
    s3_client: S3Client, bucket: str, job: VideoJob, profile: str, outputs: list[str], metadata: dict[str, Any]
) -> bool:
    """Write the manifest (last, conditionally) and point the key's latest outcome at it; True for a duplicate."""
    manifest_key = outputs[-1]
    manifest_body = {
        "outputs": outputs,
        "profile": profile,
        "source": _source(job),
        "metadata": metadata,
        "completed_at": _now(),
    }
    try:
        _put_json(s3_client, bucket, manifest_key, manifest_body, IfNoneMatch="*")
    except ClientError as error:
        if _error_code(error) != "PreconditionFailed":
            raise
        # Another consumer finished the same job while we worked; its outputs have the same keys as ours.
        return True
    _write_latest(s3_client, bucket, job, profile, state="processed", record=manifest_key)
    return False


def record_failure(
    job: VideoJob,
    error: PermanentJobError,
    *,
    message_id: str,
    s3_client: S3Client,
    output_bucket: str,
    profile: Profile | None = None,
) -> str | None:
    """Write ``<profile prefix>failure.json`` saying why this version of ``job`` can never succeed; return its key,
    or None when the version has a manifest (it was processed: a failure record beside it would contradict it).

    The record sits where this version's outputs would have gone, so records for different versions, buckets'
    keys or profiles never overwrite each other; ``<key folder><profile>.latest.json`` then points at it (if no
    newer event of the key is recorded there). ``profile`` defaults to the one ``process_video`` stored on
    ``error``. Written once (``If-None-Match: *``): a redelivery keeps the first record, its message id and time.
    """
    name = get_profile(profile).name if profile is not None else error.profile
    if name is None:
        raise ValueError("record_failure needs profile=... for an error that did not come from process_video")
    prefix = job.profile_prefix(name)
    if _read_json(s3_client, output_bucket, prefix + MANIFEST_NAME) is not None:
        return None
    failure_key = prefix + FAILURE_NAME
    record = {
        "reason": error.reason,
        "message": error.message,
        "message_id": message_id,
        "profile": name,
        "source": _source(job),
        "time": _now(),
    }
    try:
        _put_json(s3_client, output_bucket, failure_key, record, IfNoneMatch="*")
    except ClientError as put_error:
        if _error_code(put_error) not in _LOST_RACE:
            raise
        # An earlier delivery recorded it: keep that record; the pointer below is still brought up to date.
    _write_latest(s3_client, output_bucket, job, name, state="failed", record=failure_key, reason=error.reason)
    return failure_key


def _write_latest(
    s3_client: S3Client, bucket: str, job: VideoJob, profile: str, *, state: str, record: str, reason: str = ""
) -> None:
    """Point ``<key folder><profile>.latest.json`` at this outcome if it is newer than the one there, so "what is
    the state of this key now" is one GET. Older failure records stay as history; the pointer supersedes them.

    A compare-and-swap: read the pointer and its ETag, decide (:func:`_moves_forward`), write with ``If-Match``
    (``If-None-Match: *`` when there is none); a writer that lost the race reads again and decides again.
    """
    latest: dict[str, Any] = {"state": state, "profile": profile, "record": record, "source": _source(job)}
    if reason:
        latest["reason"] = reason
    latest["order"] = event_order(job)
    latest["time"] = _now()
    key = job.latest_key(profile)
    for _ in range(_LATEST_ATTEMPTS):
        current, etag = _read_json_and_etag(s3_client, bucket, key)
        if current is not None and not _moves_forward(latest, current):
            return
        condition = {"IfNoneMatch": "*"} if current is None else {"IfMatch": etag}
        try:
            _put_json(s3_client, bucket, key, latest, **condition)
        except ClientError as error:
            if _error_code(error) not in _LOST_RACE | {"NoSuchKey"}:
                raise
            continue
        return
    raise RuntimeError(
        f"s3://{bucket}/{key} changed under {_LATEST_ATTEMPTS} conditional writes in a row; the message is retried"
    )


def _moves_forward(candidate: dict[str, Any], current: dict[str, Any]) -> bool:
    """Whether the pointer ``candidate`` replaces ``current``: the same version only from failed to processed;
    another version only when its event is newer (when the two cannot be ordered, e.g. a pointer written before
    pointers carried their order, the later write wins, as it always did)."""
    source, current_source = candidate["source"], current.get("source", {})
    if (source.get("version_id"), source.get("etag")) == (current_source.get("version_id"), current_source.get("etag")):
        return _STATE_RANK.get(candidate["state"], 0) > _STATE_RANK.get(current.get("state", ""), 0)
    newer = newer_event(candidate["order"], current.get("order") or {})
    return True if newer is None else newer


def _put_json(s3_client: S3Client, bucket: str, key: str, body: dict[str, Any], **extra: Any) -> None:
    s3_client.put_object(
        Bucket=bucket, Key=key, Body=json.dumps(body, indent=2).encode(), ContentType="application/json", **extra
    )


def _read_json_and_etag(s3_client: S3Client, bucket: str, key: str) -> tuple[dict[str, Any] | None, str]:
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _error_code(error) == "NoSuchKey":
            return None, ""
        raise
    document: dict[str, Any] = json.loads(response["Body"].read())
    return document, response["ETag"]


def _read_json(s3_client: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    return _read_json_and_etag(s3_client, bucket, key)[0]


def _check_source(s3_client: S3Client, job: VideoJob, max_bytes: int) -> str | None:
    """HEAD the source and reject it before downloading; return the version to download (if versioned)."""
    try:
        if job.version_id:
            head = s3_client.head_object(Bucket=job.bucket, Key=job.key, VersionId=job.version_id)
        else:
            head = s3_client.head_object(Bucket=job.bucket, Key=job.key)
    except ClientError as error:
        _raise_gone_if_not_found(error, job)
        raise
    etag = head["ETag"].strip('"')
    if not job.version_id and job.etag and etag != job.etag:
        # Overwritten since the event; the new upload has an event of its own.
        raise ObjectReplacedError(
            f"s3://{job.bucket}/{job.key} was replaced (ETag {etag}, the job names {job.etag}); "
            "the new object's own event covers it"
        )
    size = head["ContentLength"]
    if size == 0:
        raise EmptyObjectError(f"s3://{job.bucket}/{job.key} is empty (0 bytes)")
    if size > max_bytes:
        raise TooLargeError(f"s3://{job.bucket}/{job.key} is {size} bytes, above the limit of {max_bytes} bytes")
    # Download exactly the version we checked, when the bucket is versioned.
    return job.version_id or head.get("VersionId")


def _make_outputs(
    source: Path,
    out: Path,
    info: ffmpeg.VideoInfo,
    metadata: dict[str, Any],
    profile: VideoProfile,
    limits: MediaLimits,
    budget: TimeBudget | None,
) -> list[Path]:
    out.mkdir()
    metadata_file = out / METADATA_NAME
    metadata_file.write_text(json.dumps(metadata, indent=2))
    thumbnail = out / THUMBNAIL_NAME
    with _budget_stage(budget, limits, 0.0, "the thumbnail") as thumbnail_limits:
        ffmpeg.make_thumbnail(source, thumbnail, info, thumbnail=profile.thumbnail, limits=thumbnail_limits)
    rungs = profile.renditions_for(info.width, info.height)
    renditions: list[Path] = []
    if rungs:
        with _budget_stage(budget, limits, info.duration, "the renditions") as rendition_limits:
            renditions = ffmpeg.make_renditions(source, out, info, rungs, limits=rendition_limits)
    return [metadata_file, thumbnail, *renditions]


def _budget_limits(
    budget: TimeBudget | None, limits: MediaLimits, duration: float | None, *, needed: float = 0.0
) -> MediaLimits:
    """``limits`` with each run ending within ``budget``; ``OutOfTimeError`` when less than ``needed`` is left."""
    if budget is None:
        return limits
    left = budget.remaining()
    if left <= 0 or left < needed:
        raise OutOfTimeError(
            f"not started: {budget.what} has {max(0.0, left):.0f} s left, the next step may take {needed:.0f} s",
            reason=budget.out_of_time_reason,
        )
    return limits.within(left, duration)


@contextlib.contextmanager
def _budget_stage(
    budget: TimeBudget | None, limits: MediaLimits, duration: float | None, what: str
) -> Iterator[MediaLimits]:
    """Run one ffmpeg stage within what ``budget`` leaves: a stage stopped by the budget (not by the media
    ceiling) did not fit, and says so with ``OutOfTimeError``."""
    stage_limits = _budget_limits(budget, limits, duration)
    try:
        yield stage_limits
    except ResourceCeilingError as error:
        if error.reason != "time_limit" or stage_limits is limits or budget is None:
            raise
        raise OutOfTimeError(
            f"stopped: {what} did not finish within {budget.what}", reason=budget.out_of_time_reason
        ) from error


def _check_fits(budget: TimeBudget | None, profile: VideoProfile, limits: MediaLimits, info: ffmpeg.VideoInfo) -> None:
    """Refuse, before anything is decoded, a video whose ceiling for the rest of the job exceeds ``budget``."""
    if budget is None:
        return
    needed = profile.time_limit(limits, info.duration, width=info.width, height=info.height)
    left = budget.remaining()
    if needed > left:
        duration = "an unknown duration" if info.duration is None else f"{info.duration:,.0f} s of video"
        raise OutOfTimeError(
            f"the {profile.name} profile may take up to {needed:,.0f} s for {duration} (MediaLimits time "
            f"ceilings), more than the {max(0.0, left):,.0f} s {budget.what} has left",
            reason=budget.out_of_time_reason,
        )


def _raise_gone_if_not_found(error: ClientError, job: VideoJob) -> None:
    """404, or 403: a role without ``s3:ListBucket`` on the bucket (the deployed consumers' roles) is told 403 for
    a key that does not exist, so S3 cannot tell it "gone" from "forbidden". Both are permanent: retrying a
    deleted object only delays the other inputs and ends in the DLQ. The record says what to check."""
    code = _error_code(error)
    version = f" version {job.version_id}" if job.version_id else ""
    if code in _NOT_FOUND:
        raise ObjectGoneError(f"s3://{job.bucket}/{job.key}{version} no longer exists") from error
    if code in _FORBIDDEN:
        raise ObjectGoneError(
            f"s3://{job.bucket}/{job.key}{version} no longer exists, or this consumer may not read it: S3 answered "
            f"{code} (without s3:ListBucket on the bucket, S3 answers 403 for a missing key). If the object is "
            "there, grant the consumer's role s3:GetObject and s3:GetObjectVersion on it and send the job again."
        ) from error


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _source(job: VideoJob) -> dict[str, str | None]:
    return {"bucket": job.bucket, "key": job.key, "version_id": job.version_id, "etag": job.etag}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
