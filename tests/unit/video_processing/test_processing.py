"""process_video and record_failure against moto S3, with the real ffmpeg."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest

from sqs_decoupling.video import ffmpeg as video_ffmpeg
from sqs_decoupling.video.errors import EmptyObjectError, FfmpegError, ObjectGoneError, TooLargeError
from sqs_decoupling.video.jobs import VideoJob
from sqs_decoupling.video.processing import process_video, record_failure
from tests.support.aws import REGION, count_calls
from tests.support.videos import FEW_FRAMES_FPS, cached_video_bytes, media_info
from tests.unit.video_processing.buckets import LIMIT, OUTPUT, SOURCE, output_keys, read_json, upload

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_s3.client import S3Client


def test_preview_writes_metadata_thumbnail_and_manifest_last(buckets: S3Client, tmp_path: Path) -> None:
    # GIVEN an uploaded 160x120 clip
    job = upload(buckets, "uploads/clip.mp4", cached_video_bytes())
    prefix = f"processed/uploads/clip.mp4/{job.version_id}/preview/"

    # WHEN the preview profile runs
    result = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)

    # THEN the outputs are exactly metadata, thumbnail and the manifest (listed last), under the version's prefix
    assert result.outputs == (f"{prefix}metadata.json", f"{prefix}thumbnail.jpg", f"{prefix}manifest.json")
    assert output_keys(buckets) == {*result.outputs, "processed/uploads/clip.mp4/preview.latest.json"}
    assert not result.duplicate
    # AND the metadata describes the video and where it came from
    metadata = read_json(buckets, f"{prefix}metadata.json")
    assert metadata == result.metadata
    assert metadata["source"] == {"bucket": SOURCE, "key": job.key, "version_id": job.version_id, "etag": job.etag}
    assert metadata["video"] == {
        "duration": 1.0,
        "width": 160,
        "height": 120,
        "codec": "h264",
        "fps": 25.0,
        "container": "mov,mp4,m4a,3gp,3g2,mj2",
        "has_audio": False,
        "rotation": 0,
        "streams": 1,
    }
    # AND the manifest records the complete set
    manifest = read_json(buckets, f"{prefix}manifest.json")
    assert manifest["outputs"] == list(result.outputs)
    assert manifest["profile"] == "preview"
    assert manifest["source"]["version_id"] == job.version_id
    assert manifest["completed_at"].endswith("Z")
    thumbnail = tmp_path / "thumbnail.jpg"
    buckets.download_file(OUTPUT, f"{prefix}thumbnail.jpg", str(thumbnail))
    assert media_info(thumbnail)["size"] == (160, 120)
    assert buckets.head_object(Bucket=OUTPUT, Key=f"{prefix}thumbnail.jpg")["ContentType"] == "image/jpeg"


@pytest.mark.parametrize(
    ("size", "renditions"),
    [
        ("1280x720", {"720p.mp4": (1280, 720), "480p.mp4": (854, 480)}),
        ("640x480", {"480p.mp4": (640, 480)}),  # 720p would be an upscale: skipped
        ("320x240", {}),
    ],
)
def test_transcode_makes_renditions_but_never_upscales(
    buckets: S3Client, tmp_path: Path, size: str, renditions: dict[str, tuple[int, int]]
) -> None:
    # GIVEN a 1 s clip of this size, with sound
    job = upload(buckets, f"uploads/{size}.mp4", cached_video_bytes(size=size, audio=True, fps=FEW_FRAMES_FPS))

    # WHEN the transcode profile runs
    result = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="transcode", max_bytes=LIMIT)

    # THEN it made exactly the renditions no taller than the source, H.264 with sound, aspect ratio kept
    names = {key.rsplit("/", 1)[1] for key in result.outputs}
    assert names == {"metadata.json", "thumbnail.jpg", "manifest.json", *renditions}
    for name, dimensions in renditions.items():
        local = tmp_path / name
        buckets.download_file(OUTPUT, job.profile_prefix("transcode") + name, str(local))
        info = media_info(local)
        assert (info["size"], info["codec"]) == (dimensions, "h264")
        assert info["duration"] == pytest.approx(1.0, abs=0.1)


def test_a_completed_job_is_not_redone(buckets: S3Client, ffmpeg_calls: list[list[str]]) -> None:
    # GIVEN a job already processed once
    job = upload(buckets, "uploads/clip.mp4", cached_video_bytes())
    first = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)
    runs = len(ffmpeg_calls)
    source_gets = count_calls(buckets, "GetObject")

    # WHEN it is delivered again
    again = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)

    # THEN it is a duplicate: no download, no ffmpeg, same outputs and metadata as the first run
    assert again.duplicate
    assert (again.outputs, again.metadata) == (first.outputs, first.metadata)
    assert len(ffmpeg_calls) == runs
    assert [call["Bucket"] for call in source_gets] == [OUTPUT]  # only the manifest was read


def test_a_partial_output_set_without_manifest_is_redone(buckets: S3Client) -> None:
    # GIVEN a consumer that died after uploading the thumbnail but before the manifest
    job = upload(buckets, "uploads/clip.mp4", cached_video_bytes())
    thumbnail_key = job.profile_prefix("preview") + "thumbnail.jpg"
    buckets.put_object(Bucket=OUTPUT, Key=thumbnail_key, Body=b"half-written")

    # WHEN the message is redelivered
    result = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)

    # THEN the job is done in full and the stale thumbnail replaced
    assert not result.duplicate
    assert output_keys(buckets) == {*result.outputs, job.latest_key("preview")}
    assert buckets.get_object(Bucket=OUTPUT, Key=thumbnail_key)["Body"].read() != b"half-written"


def test_when_another_consumer_writes_the_manifest_first_the_result_is_a_duplicate(buckets: S3Client) -> None:
    # GIVEN a second consumer that completes the same job just before this one writes its manifest
    job = upload(buckets, "uploads/clip.mp4", cached_video_bytes())
    manifest_key = job.profile_prefix("preview") + "manifest.json"
    other_consumer = boto3.client("s3", region_name=REGION)
    winner = b'{"written_by": "the other consumer"}'

    def other_consumer_wins(params: dict[str, object], **_: object) -> None:
        if params["Key"] == manifest_key:  # the other client's own put does not pass through this hook
            other_consumer.put_object(Bucket=OUTPUT, Key=manifest_key, Body=winner, IfNoneMatch="*")

    buckets.meta.events.register("provide-client-params.s3.PutObject", other_consumer_wins)

    # WHEN this consumer finishes
    result = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)

    # THEN its conditional write lost the race, it reports a duplicate, and the winner's manifest stands
    assert result.duplicate
    assert buckets.get_object(Bucket=OUTPUT, Key=manifest_key)["Body"].read() == winner


def test_the_source_is_checked_before_download(buckets: S3Client, ffmpeg_calls: list[list[str]]) -> None:
    # GIVEN an empty object, one above the limit, and a version that does not exist
    empty = upload(buckets, "uploads/empty.mp4", b"")
    big = upload(buckets, "uploads/big.mp4", cached_video_bytes())
    missing = VideoJob(bucket=SOURCE, key="uploads/big.mp4", version_id="no-such-version", etag=None, size=None)
    source_gets = count_calls(buckets, "GetObject")

    # WHEN / THEN each is a permanent failure with its reason, and none was downloaded or probed
    with pytest.raises(EmptyObjectError) as empty_error:
        process_video(empty, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)
    with pytest.raises(TooLargeError, match=r"above the limit of 1000 bytes") as big_error:
        process_video(big, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=1000)
    with pytest.raises(ObjectGoneError, match="no-such-version no longer exists") as gone_error:
        process_video(missing, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)
    assert (empty_error.value.reason, big_error.value.reason, gone_error.value.reason) == (
        "empty_object",
        "too_large",
        "object_gone",
    )
    assert {call["Bucket"] for call in source_gets} == {OUTPUT}
    assert ffmpeg_calls == []


def test_an_ffmpeg_failure_on_a_valid_video_is_transient(buckets: S3Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a real video, and an ffmpeg that fails while making the thumbnail (say the disk filled up)
    job = upload(buckets, "uploads/clip.mp4", cached_video_bytes())
    real_run = video_ffmpeg.run_ffmpeg

    def failing_thumbnail(args: list[str], **options: Any) -> Any:
        if "-update" in args:  # the thumbnail's run
            args = [*args[:-1], "/nonexistent-dir/thumbnail.jpg"]
        return real_run(args, **options)

    monkeypatch.setattr(video_ffmpeg, "run_ffmpeg", failing_thumbnail)

    # WHEN / THEN the error is not a PermanentJobError (the message will be retried) and nothing is complete
    with pytest.raises(FfmpegError, match="failed to make the thumbnail"):
        process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)
    assert not any(key.endswith("manifest.json") for key in output_keys(buckets))


def test_record_failure_writes_one_record_per_version_and_profile(buckets: S3Client) -> None:
    # GIVEN a permanent failure for a job
    job = VideoJob(bucket=SOURCE, key="uploads/notes.mp4", version_id="v1", etag="e1", size=12)
    error = TooLargeError("s3://video-uploads/uploads/notes.mp4 is 12 bytes, above the limit of 10 bytes")

    # WHEN it is recorded twice (a redelivery)
    first = record_failure(job, error, message_id="m-1", s3_client=buckets, output_bucket=OUTPUT, profile="preview")
    second = record_failure(job, error, message_id="m-2", s3_client=buckets, output_bucket=OUTPUT, profile="preview")

    # THEN there is one record, where that version's preview outputs would go, with reason, message, source, time,
    # written once: the redelivery keeps the first delivery's record (its message id)
    assert first == second == "processed/uploads/notes.mp4/v1/preview/failure.json"
    assert output_keys(buckets) == {first, "processed/uploads/notes.mp4/preview.latest.json"}
    record = read_json(buckets, first)
    assert record | {"time": None} == {
        "reason": "too_large",
        "message": str(error),
        "message_id": "m-1",
        "profile": "preview",
        "source": {"bucket": SOURCE, "key": "uploads/notes.mp4", "version_id": "v1", "etag": "e1"},
        "time": None,
    }
    assert record["time"].endswith("Z")


def test_record_failure_needs_a_profile_for_an_error_raised_elsewhere(buckets: S3Client) -> None:
    # GIVEN a permanent error a consumer raised itself (not from process_video, so it carries no profile)
    job = VideoJob(bucket=SOURCE, key="uploads/notes.mp4", version_id="v1", etag="e1", size=12)
    # WHEN / THEN record_failure says what it needs instead of guessing where the record goes
    with pytest.raises(ValueError, match="needs profile="):
        record_failure(job, TooLargeError("too big"), message_id="m-1", s3_client=buckets, output_bucket=OUTPUT)
