"""Stopping the real worker (``python -m sqs_decoupling.worker_fleet.worker``) in the middle of a real transcode, as
systemd and shells do.

``systemctl stop`` with systemd's default ``KillMode=control-group``, a shutdown, or Ctrl-C signal the worker's
whole process group; with ``KillMode=mixed`` only the worker gets SIGTERM. Either way the transcode in flight must
either finish within the drain time (message deleted) or be released at the drain deadline (message visible again
at once), and no ffmpeg may outlive the worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("sqs_decoupling.video")

from sqs_decoupling.video.jobs import VideoJob, sqs_body_for
from tests.integration.conftest import send_messages
from tests.support.schedule import WORKER_STOP_CLIP
from tests.support.videos import cached_long_video
from tools.localcloud.server import queue_depth, wait_until

# One pytest-xdist process runs them all, so the clips below are made once, not once per process.
pytestmark = pytest.mark.xdist_group(WORKER_STOP_CLIP)


def clip_for(drain_seconds: str) -> bytes:
    """The 720p clip a case transcodes (two renditions from one decode), by the case's drain time.

    A release case (0.5 s drain) needs a transcode many times longer than the drain, on a quiet machine too: 40 s
    of video, several seconds of work (with a 12 s clip, about 1.6 s of work under load, the transcode sometimes
    finished inside the drain when the machine was idle, and the release case saw a success). The worker ends it at
    the drain deadline, so its length costs only its making, which ``cached_long_video`` keeps cheap.
    The finishing case (120 s drain) transcodes its clip to the end: 8 s of video, one to two seconds of work, still
    running when the stop begins (the test checks that the drain waited for it) and far inside the drain.
    Made when a test here first needs it, not when the module is imported: every pytest-xdist process imports it."""
    return cached_long_video(seconds=8 if drain_seconds == "120" else 40, size="1280x720").read_bytes()


def ffmpeg_processes(*markers: str) -> list[int]:
    """Live ffmpeg processes whose command line mentions every marker (e.g. the worker's private temp directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if "ffmpeg" in cmdline and all(marker in cmdline for marker in markers) and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
def transcode_job(client, make_queue, sqs, drain_seconds):
    """An uploaded 720p clip (``clip_for`` the test's ``drain_seconds`` parameter), its job on a queue with a 300 s
    visibility timeout, and an output bucket."""
    clip = clip_for(drain_seconds)
    s3 = client("s3")
    suffix = uuid.uuid4().hex[:8]
    uploads, output = f"uploads-{suffix}", f"processed-{suffix}"
    s3.create_bucket(Bucket=uploads)
    s3.create_bucket(Bucket=output)
    etag = s3.put_object(Bucket=uploads, Key="uploads/long.mp4", Body=clip)["ETag"]
    job = VideoJob(bucket=uploads, key="uploads/long.mp4", version_id=None, etag=etag, size=len(clip))
    queue = make_queue(visibility_timeout=300)
    send_messages(sqs, queue.url, [sqs_body_for(job)])
    return s3, queue, output, job


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds ffmpeg processes through /proc")
@pytest.mark.parametrize(
    ("drain_seconds", "signalled"),
    [("0.5", "process group"), ("0.5", "worker only"), ("120", "process group")],
)
def test_a_stop_mid_transcode_finishes_or_releases_the_job_and_leaves_no_ffmpeg(
    worker_env, sqs, transcode_job, tmp_path, drain_seconds, signalled
):
    # GIVEN the real worker, in its own process group as under systemd, in the middle of a real transcode
    s3, queue, output, job = transcode_job
    workdir = tmp_path / f"work-{uuid.uuid4().hex[:6]}"
    workdir.mkdir()
    options = ["--wait-seconds", "1", "--drain-seconds", drain_seconds]
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sqs_decoupling.worker_fleet.worker",
            "--queue-url",
            queue.url,
            "--output-bucket",
            output,
            *options,
        ],
        env=worker_env | {"TMPDIR": str(workdir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(lambda: ffmpeg_processes(str(workdir), "720p.mp4"), timeout=60, what="the 720p transcode to start")

        # WHEN SIGTERM reaches the worker's whole process group (systemd's default), or the worker only (mixed)
        if signalled == "process group":
            os.killpg(worker.pid, signal.SIGTERM)
        else:
            worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=120)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate()

    # THEN the worker exits cleanly, and no ffmpeg it started is still running
    assert worker.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert ffmpeg_processes(str(workdir)) == []
    logs = [json.loads(line) for line in stdout.splitlines()]
    counters = logs[-1]["jobs"]
    manifest = f"{job.profile_prefix('transcode')}manifest.json"
    outputs = {obj["Key"] for obj in s3.list_objects_v2(Bucket=output).get("Contents", [])}
    if drain_seconds == "120":
        # AND with a drain longer than the job, the drain waited for the transcode in flight, which finished and its
        # message was deleted
        assert any(line.get("message") == "draining" and line.get("in_flight") == 1 for line in logs), logs
        assert counters.get("succeeded") == 1 and counters.get("deleted") == 1, counters
        assert manifest in outputs
        assert queue_depth(sqs, queue.url) == (0, 0)
    else:
        # AND with a short drain, the message was released: visible again now, not after its 300 s timeout
        assert counters.get("released") == 1, counters
        assert queue_depth(sqs, queue.url) == (1, 0)
        assert manifest not in outputs
        assert any(line.get("message") == "ended the ffmpeg processes of the jobs given up" for line in logs)
