"""A pixel bomb stays inside the configured ceilings: measured on the process tree, in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sqs_decoupling.contracts.media import MIB, MediaLimits
from tests.unit.video_processing.corpus import CORPUS_GROUP
from tools.localcloud.paths import REPO_ROOT

# Each test decodes or probes a pixel bomb in a fresh interpreter: in `make test`, not the inner-loop tier; the bomb
# is the edge-case corpus's, made by one test process for these tests and the corpus sweep (pytest-xdist loadgroup).
pytestmark = [pytest.mark.slow, CORPUS_GROUP]

# In a fresh process: run process_video on one upload against in-process moto S3 ("job"), or only ffmpeg's
# thumbnail of it without the probe's checks ("thumbnail"); report the outcome and the peak resident memory of the
# process itself (the consumer) and of its largest child (ffmpeg runs one at a time, so this is the tree's peak).
CHILD = textwrap.dedent(
    """
    import json, resource, sys, tempfile
    from pathlib import Path
    import boto3
    from moto import mock_aws
    from sqs_decoupling.video import ffmpeg
    from sqs_decoupling.video.errors import PermanentJobError
    from sqs_decoupling.video.jobs import VideoJob
    from sqs_decoupling.video.processing import process_video
    from sqs_decoupling.contracts.media import MediaLimits

    mode, path, limits = sys.argv[1], sys.argv[2], MediaLimits(**json.loads(sys.argv[3]))
    outcome = "processed"
    try:
        if mode == "thumbnail":
            info = ffmpeg.probe(Path(path), limits)
            ffmpeg.make_thumbnail(Path(path), Path(tempfile.mkdtemp()) / "t.jpg", info, limits=limits)
        else:
            with mock_aws():
                s3 = boto3.client("s3", region_name="us-east-1")
                for bucket in ("uploads", "outputs"):
                    s3.create_bucket(Bucket=bucket)
                etag = s3.put_object(Bucket="uploads", Key="bomb.mp4", Body=open(path, "rb").read())["ETag"]
                job = VideoJob(bucket="uploads", key="bomb.mp4", version_id=None, etag=etag, size=None)
                process_video(job, s3_client=s3, output_bucket="outputs", profile="transcode", max_bytes=10**9,
                              limits=limits)
    except PermanentJobError as error:
        outcome = error.reason
    kib = 1024
    print(json.dumps({
        "outcome": outcome,
        "consumer_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib,
        "ffmpeg_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib,
    }))
    """
)


def run_in_fresh_process(bomb: Path, mode: str = "job", **limits: object) -> dict[str, object]:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    env.pop("AWS_ENDPOINT_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(bomb), json.dumps(limits)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env=env,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def bomb(edge_case_corpus: dict[str, Path]) -> Path:
    # The corpus's huge_frame case, make_pixel_bomb's default: 190 KB on disk; 3 frames of 8000x8000 that decode to
    # 96 MB each.
    return edge_case_corpus["huge_frame"]


def test_the_default_limits_refuse_a_pixel_bomb_from_the_probe(bomb: Path) -> None:
    # GIVEN the default limits, WHEN the bomb is processed
    result = run_in_fresh_process(bomb)
    # THEN it is a permanent failure found by the probe, and ffmpeg stayed under the default memory ceiling
    assert result["outcome"] == "too_large_frame"
    ceiling = MediaLimits().ffmpeg_memory_bytes
    assert ceiling is not None
    assert isinstance(result["ffmpeg_rss"], int) and result["ffmpeg_rss"] < ceiling


ADMIT_THE_BOMB = {"max_width": 8000, "max_height": 8000, "max_pixels": 8000 * 8000}
CEILING = 384 * MIB


def test_frames_too_big_for_the_memory_ceiling_are_refused_before_decoding(bomb: Path) -> None:
    # GIVEN frame limits that admit 8000x8000 frames, but a 384 MiB ceiling per ffmpeg
    # WHEN the bomb is processed
    result = run_in_fresh_process(bomb, **ADMIT_THE_BOMB, ffmpeg_memory_bytes=CEILING)
    # THEN the probe's frame size says it cannot be decoded under the ceiling: a permanent failure, ffmpeg below it
    assert result["outcome"] == "memory_limit"
    assert isinstance(result["ffmpeg_rss"], int) and result["ffmpeg_rss"] < CEILING


def test_the_memory_ceiling_holds_where_ffmpeg_decodes_a_bomb(bomb: Path) -> None:
    # GIVEN the bomb decoded straight away (no check of its frame size), once without and once with the ceiling
    unbounded = run_in_fresh_process(bomb, "thumbnail", **ADMIT_THE_BOMB, ffmpeg_memory_bytes=None)
    bounded = run_in_fresh_process(bomb, "thumbnail", **ADMIT_THE_BOMB, ffmpeg_memory_bytes=CEILING)

    # THEN without the ceiling ffmpeg needs more than it (so this is a real bomb) ...
    assert isinstance(unbounded["ffmpeg_rss"], int) and unbounded["ffmpeg_rss"] > CEILING
    # ... and with it ffmpeg stays below it, fails at once, and the failure is permanent with its own reason
    assert bounded["outcome"] == "memory_limit"
    assert isinstance(bounded["ffmpeg_rss"], int) and bounded["ffmpeg_rss"] < CEILING
    # AND the whole tree (consumer + ffmpeg) stayed well under a 2,048 MB Lambda
    assert isinstance(bounded["consumer_rss"], int)
    assert bounded["consumer_rss"] + bounded["ffmpeg_rss"] < 1024 * MIB
