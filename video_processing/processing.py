"""Process one video job end to end: check, download, probe, make outputs, upload, record completion.

Delivery is at least once, so this is idempotent: outputs go under keys derived from the object version and the
profile, and ``manifest.json``, written last with a conditional put, marks them complete. A set of outputs without
a manifest is partial and gets redone.

Layout in the output bucket, per source key (``<key folder>`` is ``processed/<key>/``, or
``processed/_hashed/<sha256 of the key>/`` for keys too long for S3's 1,024-byte limit once outputs are added)::

    <key folder><version id or ETag>/<profile>/metadata.json, thumbnail.jpg, <rendition>.mp4, manifest.json
    <key folder><version id or ETag>/<profile>/failure.json      why that version can never succeed
    <key folder><profile>.latest.json                            the newest outcome: processed or failed

"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from video_processing import ffmpeg
from video_processing.errors import (
    EmptyObjectError,
    ObjectGoneError,
    ObjectReplacedError,
    OutputKeyTooLongError,
    PermanentJobError,
    TooLargeError,
)
from video_processing.jobs import MAX_S3_KEY_BYTES, VideoJob
from video_processing.limits import DEFAULT_LIMITS, MediaLimits
from video_processing.profiles import (
    FAILURE_NAME,
    MANIFEST_NAME,
    METADATA_NAME,
    THUMBNAIL_NAME,
    VideoProfile,
    get_profile,
)

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

# A profile name from video_processing.profiles.PROFILES ("preview", "transcode"), or a VideoProfile.
Profile = str | VideoProfile

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchVersion", "NoSuchBucket"})
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
) -> JobResult:
    """Make ``profile``'s outputs for ``job`` under ``job.profile_prefix(profile)`` in ``output_bucket``.

    ``preview``: metadata.json + thumbnail.jpg. ``transcode``: those + 720p.mp4 / 480p.mp4 (never upscaled).
    ``limits`` bound what one input may use (default :data:`~video_processing.limits.DEFAULT_LIMITS`).
    Raises ``PermanentJobError`` subclasses (their ``profile`` set, for :func:`record_failure`) for inputs that can
    never succeed; ``UnknownProfileError`` for a profile name not in the registry; anything else is transient.
    """
    chosen = get_profile(profile)
    try:
        return _process(job, s3_client, output_bucket, chosen, max_bytes, workdir, limits)
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

    version_id = _check_source(s3_client, job, max_bytes)
    with tempfile.TemporaryDirectory(prefix="video-", dir=workdir) as tmp:
        workspace = Path(tmp)
        # No file extension: ffmpeg must recognise the container from its bytes, not from the upload's name.
        source = workspace / "source"
        try:
            s3_client.download_file(
                job.bucket, job.key, str(source), ExtraArgs={"VersionId": version_id} if version_id else None
            )
        except ClientError as error:
            _raise_gone_if_not_found(error, job)
            raise
        info = ffmpeg.probe(source, limits)
        ffmpeg.check_limits(info, limits)
        metadata = {"profile": profile.name, "source": _source(job), "video": asdict(info)}
        files = _make_outputs(source, workspace / "out", info, metadata, profile, limits)

        outputs = [prefix + path.name for path in files]
        for path, key in zip(files, outputs, strict=True):
            s3_client.upload_file(str(path), output_bucket, key, ExtraArgs={"ContentType": _CONTENT_TYPES[path.suffix]})

    outputs.append(manifest_key)
    duplicate = _complete(s3_client, output_bucket, job, profile.name, outputs, metadata)
    return JobResult(
        job=job,
        outputs=tuple(outputs),
        duplicate=duplicate,
        seconds=time.monotonic() - started,
        metadata=metadata,
    )


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
) -> str:
    """Write ``<profile prefix>failure.json`` saying why this version of ``job`` can never succeed; return its key.

    The record sits where this version's outputs would have gone, so records for different versions, buckets'
    keys or profiles never overwrite each other; ``<key folder><profile>.latest.json`` then points at it.
    ``profile`` defaults to the one ``process_video`` stored on ``error``. Idempotent: a redelivery overwrites the
    same record.
    """
    name = get_profile(profile).name if profile is not None else error.profile
    if name is None:
        raise ValueError("record_failure needs profile=... for an error that did not come from process_video")
    failure_key = job.profile_prefix(name) + FAILURE_NAME
    record = {
        "reason": error.reason,
        "message": error.message,
        "message_id": message_id,
        "profile": name,
        "source": _source(job),
        "time": _now(),
    }
    _put_json(s3_client, output_bucket, failure_key, record)
    _write_latest(s3_client, output_bucket, job, name, state="failed", record=failure_key, reason=error.reason)
    return failure_key


def _write_latest(
    s3_client: S3Client, bucket: str, job: VideoJob, profile: str, *, state: str, record: str, reason: str = ""
) -> None:
    """Point ``<key folder><profile>.latest.json`` at the newest outcome, so "what is the state of this key now"
    is one GET. Older failure records stay as history; the pointer supersedes them."""
    latest: dict[str, Any] = {"state": state, "profile": profile, "record": record, "source": _source(job)}
    if reason:
        latest["reason"] = reason
    latest["time"] = _now()
    _put_json(s3_client, bucket, job.latest_key(profile), latest)


def _put_json(s3_client: S3Client, bucket: str, key: str, body: dict[str, Any], **extra: Any) -> None:
    s3_client.put_object(
        Bucket=bucket, Key=key, Body=json.dumps(body, indent=2).encode(), ContentType="application/json", **extra
    )


def _read_json(s3_client: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _error_code(error) == "NoSuchKey":
            return None
        raise
    document: dict[str, Any] = json.loads(response["Body"].read())
    return document


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
) -> list[Path]:
    out.mkdir()
    metadata_file = out / METADATA_NAME
    metadata_file.write_text(json.dumps(metadata, indent=2))
    thumbnail = out / THUMBNAIL_NAME
    ffmpeg.make_thumbnail(source, thumbnail, info, thumbnail=profile.thumbnail, limits=limits)
    renditions = ffmpeg.make_renditions(
        source, out, info, profile.renditions_for(info.width, info.height), limits=limits
    )
    return [metadata_file, thumbnail, *renditions]


def _raise_gone_if_not_found(error: ClientError, job: VideoJob) -> None:
    if _error_code(error) in _NOT_FOUND:
        version = f" version {job.version_id}" if job.version_id else ""
        raise ObjectGoneError(f"s3://{job.bucket}/{job.key}{version} no longer exists") from error


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _source(job: VideoJob) -> dict[str, str | None]:
    return {"bucket": job.bucket, "key": job.key, "version_id": job.version_id, "etag": job.etag}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
