"""The edge-case corpus (generated here, nothing committed) through the real processing, both profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sqs_decoupling.video.errors import PermanentJobError
from sqs_decoupling.video.jobs import VideoJob
from sqs_decoupling.video.processing import process_video
from tests.support.videos import media_info
from tests.unit.video_processing.corpus import CORPUS_GROUP

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_s3.client import S3Client

# A sweep over every edge case, with ffmpeg making each one: in `make test`, not in the inner-loop tier; one test
# process generates the corpus for these tests and the resource-ceiling ones (pytest-xdist loadgroup).
pytestmark = [pytest.mark.slow, CORPUS_GROUP]

SOURCE = "video-uploads"
OUTPUT = "video-processed"
PROCESSED = "processed"

# name -> what happens to it: "processed" (every output made) or the permanent failure's reason.
EXPECTED = {
    "one_frame": PROCESSED,
    "no_video_stream": "not_a_video",
    "huge_frame": "too_large_frame",
    "zero_duration_metadata": PROCESSED,
    "long_declared_duration": "too_long",
    "truncated": "not_a_video",
    "corrupt_header": "not_a_video",
    "odd_dimensions": PROCESSED,
    "rotation_metadata": PROCESSED,
    "ten_bit": PROCESSED,
    "variable_frame_rate": PROCESSED,
    "many_streams": "too_many_streams",
    # Hostile tags (issue 22): they neither fill memory, nor fake the probe's facts, nor change a failure's class.
    "newline_metadata": PROCESSED,
    "fake_stream_lines": "too_high_frame_rate",
    "corrupt_frames_hostile_title": "cannot_decode",
}
# The displayed size of the 480p rendition each processed input gets (a portrait clip stays portrait).
RENDITION_480P = {name: (640, 480) for name, outcome in EXPECTED.items() if outcome == PROCESSED}
RENDITION_480P |= {"rotation_metadata": (480, 640), "odd_dimensions": (640, 480)}


def test_the_corpus_covers_every_case(edge_case_corpus: dict[str, Path]) -> None:
    assert set(edge_case_corpus) == set(EXPECTED)


@pytest.mark.parametrize("profile", ["preview", "transcode"])
def test_every_edge_case_ends_as_expected(
    edge_case_corpus: dict[str, Path], s3: S3Client, tmp_path: Path, profile: str
) -> None:
    # GIVEN every edge case uploaded
    s3.create_bucket(Bucket=SOURCE)
    s3.create_bucket(Bucket=OUTPUT)
    outcomes: dict[str, str] = {}
    for name, path in edge_case_corpus.items():
        etag = s3.put_object(Bucket=SOURCE, Key=f"uploads/{name}", Body=path.read_bytes())["ETag"]
        job = VideoJob(bucket=SOURCE, key=f"uploads/{name}", version_id=None, etag=etag, size=path.stat().st_size)

        # WHEN the real processing runs on it
        try:
            result = process_video(job, s3_client=s3, output_bucket=OUTPUT, profile=profile, max_bytes=10**8)
        except PermanentJobError as error:
            outcomes[name] = error.reason
            continue
        outcomes[name] = PROCESSED
        # THEN a processed input has its thumbnail and, for transcode, a 480p rendition the size a viewer sees
        names = {key.rsplit("/", 1)[1] for key in result.outputs}
        expected_names = {"metadata.json", "thumbnail.jpg", "manifest.json"}
        assert names == expected_names | ({"480p.mp4"} if profile == "transcode" else set()), name
        if profile == "transcode":
            local = tmp_path / f"{name}.mp4"
            s3.download_file(OUTPUT, job.profile_prefix(profile) + "480p.mp4", str(local))
            assert media_info(local)["size"] == RENDITION_480P[name], name

    # AND every input ended as expected: processed, or a permanent failure with its reason (never transient)
    assert outcomes == EXPECTED
