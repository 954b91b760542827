"""Process one video job end to end: check, download, probe, make outputs, upload, record completion.

Delivery is at least once, so this is idempotent: outputs go under keys derived from the object version, and
``manifest.json``, written last with a conditional put, marks them complete. A set of outputs without a manifest
is partial and gets redone.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from video_processing import ffmpeg
from video_processing.errors import EmptyObjectError, ObjectGoneError, PermanentJobError, TooLargeError
from video_processing.jobs import VideoJob

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

Profile = Literal["preview", "transcode"]

MANIFEST_NAME = "manifest.json"
# Rendition name -> short side in pixels (720p is 1280x720 landscape, 720x1280 portrait).
RENDITIONS: dict[str, int] = {"720p": 720, "480p": 480}

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
) -> JobResult:
    """Make the ``profile``'s outputs for ``job`` under ``job.output_prefix`` in ``output_bucket``.

    ``preview``: metadata.json + thumbnail.jpg. ``transcode``: those + 720p.mp4 / 480p.mp4 (never upscaled).
    Raises ``PermanentJobError`` subclasses for inputs that can never succeed; anything else is transient.
    """
    started = time.monotonic()
    manifest_key = job.output_prefix + MANIFEST_NAME
    # Idempotency first: a duplicate delivery costs one GET, even when the source has since been deleted.
    manifest = _read_manifest(s3_client, output_bucket, manifest_key)
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
        info = ffmpeg.probe(source)
        metadata = {"profile": profile, "source": _source(job), "video": asdict(info)}
        files = _make_outputs(source, workspace / "out", info, metadata, profile)

        outputs = [job.output_prefix + path.name for path in files]
        for path, key in zip(files, outputs, strict=True):
            s3_client.upload_file(str(path), output_bucket, key, ExtraArgs={"ContentType": _CONTENT_TYPES[path.suffix]})

    outputs.append(manifest_key)
    manifest_body = {
        "outputs": outputs,
        "profile": profile,
        "source": _source(job),
        "metadata": metadata,
        "completed_at": _now(),
    }
    try:
        s3_client.put_object(
            Bucket=output_bucket,
            Key=manifest_key,
            Body=json.dumps(manifest_body, indent=2).encode(),
            ContentType="application/json",
            IfNoneMatch="*",
        )
        duplicate = False
    except ClientError as error:
        if _error_code(error) != "PreconditionFailed":
            raise
        # Another consumer finished the same job while we worked; its outputs have the same keys as ours.
        duplicate = True
    return JobResult(
        job=job,
        outputs=tuple(outputs),
        duplicate=duplicate,
        seconds=time.monotonic() - started,
        metadata=metadata,
    )


def record_failure(
    job: VideoJob, error: PermanentJobError, *, message_id: str, s3_client: S3Client, output_bucket: str
) -> str:
    """Write ``failed/<key>.json`` saying why ``job`` can never succeed; return that key.

    Idempotent: a redelivery overwrites the same record.
    """
    record = {
        "reason": error.reason,
        "message": error.message,
        "message_id": message_id,
        "source": _source(job),
        "time": _now(),
    }
    s3_client.put_object(
        Bucket=output_bucket,
        Key=job.failure_key,
        Body=json.dumps(record, indent=2).encode(),
        ContentType="application/json",
    )
    return job.failure_key


def _read_manifest(s3_client: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if _error_code(error) == "NoSuchKey":
            return None
        raise
    manifest: dict[str, Any] = json.loads(response["Body"].read())
    return manifest


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
        raise ObjectGoneError(f"s3://{job.bucket}/{job.key} was replaced (ETag {etag}, the job names {job.etag})")
    size = head["ContentLength"]
    if size == 0:
        raise EmptyObjectError(f"s3://{job.bucket}/{job.key} is empty (0 bytes)")
    if size > max_bytes:
        raise TooLargeError(f"s3://{job.bucket}/{job.key} is {size} bytes, above the limit of {max_bytes} bytes")
    # Download exactly the version we checked, when the bucket is versioned.
    return job.version_id or head.get("VersionId")


def _make_outputs(
    source: Path, out: Path, info: ffmpeg.VideoInfo, metadata: dict[str, Any], profile: Profile
) -> list[Path]:
    out.mkdir()
    metadata_file = out / "metadata.json"
    metadata_file.write_text(json.dumps(metadata, indent=2))
    thumbnail = out / "thumbnail.jpg"
    ffmpeg.make_thumbnail(source, thumbnail, info)
    files = [metadata_file, thumbnail]
    if profile == "transcode":
        source_short_side = min(info.width, info.height)
        for name, short_side in RENDITIONS.items():
            if short_side > source_short_side:
                continue  # never upscale
            rendition = out / f"{name}.mp4"
            ffmpeg.make_rendition(source, rendition, info, short_side=short_side)
            files.append(rendition)
    return files


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
