"""Hostile and edge-case uploads through process_video / record_failure (issue 16, issue 10 item 5)."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from sqs_decoupling.contracts.profiles import UnknownProfileError
from sqs_decoupling.video import ffmpeg as video_ffmpeg
from sqs_decoupling.video.errors import ObjectReplacedError, PermanentJobError
from sqs_decoupling.video.jobs import VideoJob
from sqs_decoupling.video.processing import process_video, record_failure
from tests.support.videos import FEW_FRAMES_FPS, cached_video_bytes, make_test_video
from tests.unit.video_processing.buckets import LIMIT, OUTPUT, SOURCE, output_keys, read_json, upload
from tools.localcloud.moto_compat import s3_key_length_enforced

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from mypy_boto3_s3.client import S3Client


def one_frame_video(tmp_path: Path) -> bytes:
    path = tmp_path / "one-frame.mp4"
    subprocess.run(
        [
            *(video_ffmpeg.ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=25"),
            *("-frames:v", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", str(path)),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


@pytest.mark.parametrize("profile", ["preview", "transcode"])
def test_a_one_frame_video_gets_its_outputs(buckets: S3Client, tmp_path: Path, profile: str) -> None:
    # GIVEN a valid video of a single frame (duration 0.04 s): a seek to duration/4 would skip its only frame
    job = upload(buckets, "uploads/one-frame.mp4", one_frame_video(tmp_path))

    # WHEN it is processed
    result = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile=profile, max_bytes=LIMIT)

    # THEN it has a thumbnail (the first frame) and, for transcode, its 480p rendition
    names = {key.rsplit("/", 1)[1] for key in result.outputs}
    expected = {"metadata.json", "thumbnail.jpg", "manifest.json"} | ({"480p.mp4"} if profile == "transcode" else set())
    assert names == expected


def test_preview_and_transcode_share_one_bucket_with_complete_separate_sets(buckets: S3Client) -> None:
    # GIVEN one upload, and both consumers writing to the same output bucket
    job = upload(buckets, "uploads/clip.mp4", cached_video_bytes(size="640x480", audio=True, fps=FEW_FRAMES_FPS))

    # WHEN the preview runs first, then the transcode (the order that made the worker skip its renditions)
    preview = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)
    transcode = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="transcode", max_bytes=LIMIT)

    # THEN the transcode was not taken for a duplicate, and each profile has its own complete set and manifest
    assert not transcode.duplicate
    version = f"processed/uploads/clip.mp4/{job.version_id}/"
    assert set(preview.outputs) == {
        f"{version}preview/{n}" for n in ("metadata.json", "thumbnail.jpg", "manifest.json")
    }
    assert set(transcode.outputs) == {
        f"{version}transcode/{n}" for n in ("metadata.json", "thumbnail.jpg", "480p.mp4", "manifest.json")
    }
    for result, profile in ((preview, "preview"), (transcode, "transcode")):
        manifest = read_json(buckets, result.outputs[-1])
        assert (manifest["profile"], manifest["outputs"]) == (profile, list(result.outputs))
        assert read_json(buckets, f"{version}{profile}/metadata.json")["profile"] == profile
    assert output_keys(buckets, version) == set(preview.outputs) | set(transcode.outputs)


def test_an_unknown_profile_names_the_known_ones(buckets: S3Client) -> None:
    job = upload(buckets, "uploads/clip.mp4", cached_video_bytes())
    with pytest.raises(UnknownProfileError, match=r"unknown video profile 'thumbs': choose one of preview, transcode"):
        process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile="thumbs", max_bytes=LIMIT)


def test_failure_records_are_kept_per_version_and_superseded_by_a_later_success(buckets: S3Client) -> None:
    # GIVEN a key whose first version is not a video and whose second version is
    bad = upload(buckets, "uploads/clip.mp4", b"meeting notes, not a video\n" * 40)
    good = upload(buckets, "uploads/clip.mp4", cached_video_bytes())

    # WHEN both are processed (the failure recorded as a consumer does)
    with pytest.raises(PermanentJobError) as failure:
        process_video(bad, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)
    record_key = record_failure(bad, failure.value, message_id="m-1", s3_client=buckets, output_bucket=OUTPUT)
    latest_after_failure = read_json(buckets, "processed/uploads/clip.mp4/preview.latest.json")
    process_video(good, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)

    # THEN the failure record sits where that version's preview outputs would be, and nothing overwrote it
    assert record_key == f"processed/uploads/clip.mp4/{bad.version_id}/preview/failure.json"
    record = read_json(buckets, record_key)
    assert (record["reason"], record["source"]["version_id"], record["profile"]) == (
        "not_a_video",
        bad.version_id,
        "preview",
    )
    # AND it names no local path of the consumer's work directory
    assert "/tmp" not in record["message"] and "file:" not in record["message"]
    # AND the key's state is one GET: first the failure, then the later success supersedes it
    assert (latest_after_failure["state"], latest_after_failure["record"]) == ("failed", record_key)
    latest = read_json(buckets, "processed/uploads/clip.mp4/preview.latest.json")
    assert (latest["state"], latest["source"]["version_id"]) == ("processed", good.version_id)
    assert latest["record"] == f"processed/uploads/clip.mp4/{good.version_id}/preview/manifest.json"


def test_an_object_replaced_since_its_event_is_object_replaced_not_gone(buckets: S3Client) -> None:
    # GIVEN an event without a version (unversioned bucket), and the key overwritten since
    job = upload(buckets, "uploads/clip.mp4", cached_video_bytes())
    stale = VideoJob(bucket=SOURCE, key=job.key, version_id=None, etag=job.etag, size=job.size)
    buckets.put_object(Bucket=SOURCE, Key=job.key, Body=cached_video_bytes(size="320x240"))

    # WHEN / THEN the reason says it was replaced (the new upload's own event processes it)
    with pytest.raises(ObjectReplacedError, match="was replaced") as error:
        process_video(stale, s3_client=buckets, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)
    assert error.value.reason == "object_replaced"


@pytest.fixture
def s3_key_limit(buckets: S3Client) -> Iterator[S3Client]:
    """moto refusing keys over 1,024 bytes, as S3 does."""
    with s3_key_length_enforced():
        yield buckets


def test_the_local_s3_refuses_keys_over_1024_bytes_as_s3_does(s3_key_limit: S3Client) -> None:
    s3_key_limit.put_object(Bucket=OUTPUT, Key="k" * 1024, Body=b"fits")
    with pytest.raises(ClientError, match="KeyTooLongError"):
        s3_key_limit.put_object(Bucket=OUTPUT, Key="k" * 1025, Body=b"does not fit")


@pytest.mark.parametrize("profile", ["preview", "transcode"])
def test_a_key_near_the_1024_byte_limit_gets_outputs_under_a_hashed_prefix(
    s3_key_limit: S3Client, profile: str
) -> None:
    buckets = s3_key_limit
    # GIVEN a source key of 999 bytes (valid in S3; the full output keys would be over 1,024 bytes)
    key = "uploads/" + "k" * (999 - len("uploads/") - len(".mp4")) + ".mp4"
    job = upload(buckets, key, cached_video_bytes(size="640x480", fps=FEW_FRAMES_FPS))

    # WHEN it is processed
    result = process_video(job, s3_client=buckets, output_bucket=OUTPUT, profile=profile, max_bytes=LIMIT)

    # THEN every output key fits S3's limit, under processed/_hashed/<sha256>/, and the manifest names the full key
    assert all(len(output.encode()) <= 1024 for output in result.outputs)
    assert all(output.startswith("processed/_hashed/") for output in result.outputs)
    assert read_json(buckets, result.outputs[-1])["source"]["key"] == key


def test_a_failure_for_a_key_near_the_limit_is_recorded_under_the_hashed_prefix(s3_key_limit: S3Client) -> None:
    # GIVEN a 999-byte key that is not a video
    key = "uploads/" + "n" * (999 - len("uploads/"))
    job = upload(s3_key_limit, key, b"not a video\n" * 50)
    # WHEN it fails and the failure is recorded
    with pytest.raises(PermanentJobError) as failure:
        process_video(job, s3_client=s3_key_limit, output_bucket=OUTPUT, profile="preview", max_bytes=LIMIT)
    record_key = record_failure(job, failure.value, message_id="m-1", s3_client=s3_key_limit, output_bucket=OUTPUT)
    # THEN the record fits (the DLQ is never where it ends) and names the full key
    assert record_key.startswith("processed/_hashed/") and len(record_key.encode()) <= 1024
    assert read_json(s3_key_limit, record_key)["source"]["key"] == key


def test_make_test_video_still_makes_plain_clips(tmp_path: Path) -> None:
    # The corpus generator reuses make_test_video; it keeps making the clips other tests rely on.
    assert make_test_video(tmp_path / "c.mp4").stat().st_size > 0
