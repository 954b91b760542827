"""``python -m sqs_decoupling.worker_fleet.worker`` / ``video-worker``: the video worker, wired from options,
environment and instance metadata."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from sqs_decoupling.contracts.worker import REGION_ENV
from sqs_decoupling.regions.resolution import RegionNotFoundError, resolve_region
from sqs_decoupling.worker_fleet.worker.autoscaling import (
    AsgLifecycleActions,
    InServiceGate,
    ScaleInGuard,
    TerminationWatcher,
    complete_lifecycle_action,
    find_asg_instance,
)
from sqs_decoupling.worker_fleet.worker.config import Settings, parse_settings
from sqs_decoupling.worker_fleet.worker.consumer import QueueWorker, WorkerOptions
from sqs_decoupling.worker_fleet.worker.counters import Counters, count_requests
from sqs_decoupling.worker_fleet.worker.imds import Imds, ImdsUnavailable
from sqs_decoupling.worker_fleet.worker.job import JobHandler
from sqs_decoupling.worker_fleet.worker.logs import configure_logging
from sqs_decoupling.worker_fleet.worker.metrics import MetricsEmitter
from sqs_decoupling.worker_fleet.worker.spot import SpotWatcher

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("worker")


class StartupError(Exception):
    """Something the operator has to fix before the worker can run."""


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv, os.environ)
    configure_logging(settings.log_level)
    try:
        worker = build_worker(settings)
    except StartupError as error:
        print(f"video-worker: error: {error}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, worker.on_signal)
    signal.signal(signal.SIGINT, worker.on_signal)
    worker.run()
    print(
        json.dumps(
            {
                "jobs": worker.counters.jobs(),
                "requests": worker.counters.requests(),
            }
        ),
        flush=True,
    )
    return 0


def build_worker(settings: Settings) -> QueueWorker:
    try:
        region = resolve_region(settings.region, tool_env=REGION_ENV, environ=os.environ, queue_url=settings.queue_url)
    except RegionNotFoundError as error:
        raise StartupError(str(error)) from error
    session = boto3.session.Session(region_name=region)
    # The read timeout must outlast the 20 s long poll; standard retries back off on throttling.
    client_config = Config(
        connect_timeout=5, read_timeout=settings.wait_seconds + 10, retries={"mode": "standard", "max_attempts": 5}
    )
    counters = Counters()
    try:
        sqs = session.client("sqs", config=client_config)
        autoscaling = session.client("autoscaling", config=client_config)
    except NoRegionError as error:
        raise StartupError(str(error)) from error
    count_requests(sqs, counters)
    count_requests(autoscaling, counters)

    visibility_timeout = settings.visibility_timeout or queue_visibility_timeout(sqs, settings.queue_url)
    try:
        options = WorkerOptions(
            concurrency=settings.concurrency,
            visibility_timeout=visibility_timeout,
            wait_seconds=settings.wait_seconds,
            drain_seconds=settings.drain_seconds,
        )
    except ValueError as error:  # e.g. a queue whose visibility timeout is 0
        raise StartupError(f"{error}; pass --visibility-timeout") from error

    scale_in = ScaleInGuard(None, None)
    termination = spot = start_gate = launch = None
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() != "true":
        imds = Imds(settings.imds_url)
        target = find_asg_instance(imds, autoscaling)
        if target is not None:
            scale_in = ScaleInGuard(autoscaling, target)
            actions = (
                AsgLifecycleActions(autoscaling, target, settings.lifecycle_hook) if settings.lifecycle_hook else None
            )
            termination = TerminationWatcher(imds, actions)
            start_gate = InServiceGate(imds)
            if settings.launch_hook:
                launch = AsgLifecycleActions(autoscaling, target, settings.launch_hook)
        # On EC2, Spot notices come from instance metadata (an On-Demand instance never has one).
        if target is not None or imds_answers(imds):
            spot = SpotWatcher(imds, poll_seconds=settings.spot_poll_seconds)

    metrics = MetricsEmitter(settings.metrics_endpoint, log_group=settings.metrics_log_group)
    handler = build_handler(settings, session, client_config, counters, metrics)
    if launch is not None:
        # Started, with the queue and the bucket checked: the instance is initialized. Completing the launch hook
        # lets the group stop it into the warm pool (or, leaving the pool, put it in service).
        complete_lifecycle_action(launch, "launch")
    return QueueWorker(
        sqs,
        settings.queue_url,
        handler,
        options,
        scale_in=scale_in,
        termination=termination,
        spot=spot,
        start_gate=start_gate,
        counters=counters,
        metrics=metrics,
        # Jobs given up at the drain deadline: end their ffmpeg (it runs in its own session; see
        # sqs_decoupling.video.subprocesses), so no transcode outlives the worker.
        on_abandon=None if settings.test_handler is not None else _end_ffmpeg_children,
    )


def imds_answers(imds: Imds) -> bool:
    """True on EC2 (instance metadata answers), False on premises."""
    try:
        imds.get("instance-id")
    except ImdsUnavailable:
        return False
    return True


def _end_ffmpeg_children() -> None:
    from sqs_decoupling.video.subprocesses import children

    ended = children.end_all()
    if ended:
        log.info("ended the ffmpeg processes of the jobs given up", extra={"processes": ended})


def queue_visibility_timeout(sqs: SQSClient, queue_url: str) -> int:
    """The queue's visibility timeout; also checks the queue URL and credentials before any job starts."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])
    except (BotoCoreError, ClientError) as error:
        raise StartupError(f"cannot read queue {queue_url}: {error}") from error
    return int(attributes["Attributes"]["VisibilityTimeout"])


def build_handler(
    settings: Settings,
    session: boto3.session.Session,
    client_config: Config,
    counters: Counters,
    metrics: MetricsEmitter | None = None,
) -> JobHandler:
    if settings.test_handler is not None:
        from sqs_decoupling.worker_fleet.worker.testing import handler_from_env

        log.warning("running a TEST handler instead of the video job", extra={"handler": settings.test_handler})
        try:
            return handler_from_env(settings.test_handler, os.environ)
        except ValueError as error:
            raise StartupError(str(error)) from error

    from sqs_decoupling.worker_fleet.worker.video_jobs import (
        make_video_handler,  # imports the video library only when it is needed
    )

    assert settings.output_bucket is not None  # parse_settings insists on it without a test handler
    # Each job uses S3 from its own thread, and a download or upload uses up to 10 connections (boto3's transfer
    # default): a pool of botocore's default 10 would discard connections ("Connection pool is full").
    s3_config = client_config.merge(Config(max_pool_connections=s3_pool_size(settings.concurrency)))
    s3 = session.client("s3", config=s3_config)
    count_requests(s3, counters)
    check_output_bucket(s3, settings.output_bucket)
    kms = None
    if settings.body_key_arn:
        # Only needed for client-side encrypted bodies; created up front because jobs run in threads.
        kms = session.client("kms", config=client_config)
        count_requests(kms, counters)
    return make_video_handler(
        s3_client=s3,
        output_bucket=settings.output_bucket,
        max_bytes=settings.max_video_bytes,
        queue_url=settings.queue_url,
        body_key_arn=settings.body_key_arn,
        kms_client=kms,
        metrics=metrics,
        profile=settings.profile,
        limits=settings.limits,
    )


def s3_pool_size(concurrency: int) -> int:
    """Connections the S3 client may keep: one transfer's worth (10 threads) per concurrent job."""
    return max(10, 10 * concurrency)


def check_output_bucket(s3: S3Client, bucket: str) -> None:
    """HeadBucket before any job starts, as the queue is checked: a missing output bucket is the operator's to fix."""
    try:
        s3.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as error:
        raise StartupError(
            f"cannot use output bucket {bucket!r} (--output-bucket / WORKER_OUTPUT_BUCKET): {error}"
        ) from error


if __name__ == "__main__":
    sys.exit(main())
