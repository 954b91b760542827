"""``python -m sqs_decoupling.worker_fleet.worker`` / ``video-worker``: the video worker, wired from options,
environment and instance metadata."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("worker")


class StartupError(Exception):
    """Something the operator has to fix before the worker can run."""


def main(argv: Sequence[str] | None = None, *, make_handler: HandlerFactory | None = None) -> int:
    """Run the worker until SIGTERM or Ctrl-C; ``make_handler`` (default: the video job) builds its job handler."""
    settings = parse_settings(argv, os.environ)
    configure_logging(settings.log_level)
    try:
        worker = build_worker(settings, make_handler=make_handler or build_video_handler)
    except StartupError as error:
        print(f"video-worker: error: {error}", file=sys.stderr)
        return 1
    worker.handle_signals(signal.SIGTERM, signal.SIGINT)
    worker.run()
    print(json.dumps({"jobs": worker.counters.jobs(), "requests": worker.counters.requests()}), flush=True)
    return 0


@dataclass(frozen=True)
class WorkerClients:
    """The AWS session, the client configuration every client shares, and the SQS and Auto Scaling clients."""

    session: boto3.session.Session
    config: Config
    counters: Counters
    sqs: SQSClient
    autoscaling: AutoScalingClient


HandlerFactory = Callable[[WorkerClients, Settings, MetricsEmitter], JobHandler]
"""Builds the job handler from the worker's clients, settings and metrics: :func:`build_video_handler` by default; a
test may pass its own to run the real worker around a stand-in job."""


@dataclass(frozen=True)
class Ec2Roles:
    """What the worker does only on EC2 (in an Auto Scaling group): all None on premises."""

    scale_in: ScaleInGuard = field(default_factory=lambda: ScaleInGuard(None, None))
    termination: TerminationWatcher | None = None
    spot: SpotWatcher | None = None
    start_gate: InServiceGate | None = None
    launch: AsgLifecycleActions | None = None


def build_worker(settings: Settings, *, make_handler: HandlerFactory | None = None) -> QueueWorker:
    """The worker for ``settings``: clients, the queue's options, the EC2 roles, then the job handler."""
    clients = aws_clients(settings)
    options = worker_options(settings, clients.sqs)
    ec2 = ec2_roles(settings, clients.autoscaling)
    metrics = MetricsEmitter(settings.metrics_endpoint, log_group=settings.metrics_log_group)
    handler = (make_handler or build_video_handler)(clients, settings, metrics)
    if ec2.launch is not None:
        # Started, with the queue and the bucket checked: the instance is initialized. Completing the launch hook
        # lets the group stop it into the warm pool (or, leaving the pool, put it in service).
        complete_lifecycle_action(ec2.launch, "launch")
    return QueueWorker(
        clients.sqs,
        settings.queue_url,
        handler,
        options,
        scale_in=ec2.scale_in,
        termination=ec2.termination,
        spot=ec2.spot,
        start_gate=ec2.start_gate,
        counters=clients.counters,
        metrics=metrics,
        # Jobs given up at the drain deadline: end their ffmpeg (it runs in its own session; see
        # sqs_decoupling.video.subprocesses), so no transcode outlives the worker.
        on_abandon=_end_ffmpeg_children,
    )


def aws_clients(settings: Settings) -> WorkerClients:
    """One session in the worker's region; every request counted."""
    try:
        region = resolve_region(settings.region, tool_env=REGION_ENV, environ=os.environ, queue_url=settings.queue_url)
    except RegionNotFoundError as error:
        raise StartupError(str(error)) from error
    session = boto3.session.Session(region_name=region)
    # The read timeout must outlast the 20 s long poll; standard retries back off on throttling.
    config = Config(
        connect_timeout=5, read_timeout=settings.wait_seconds + 10, retries={"mode": "standard", "max_attempts": 5}
    )
    counters = Counters()
    try:
        sqs = session.client("sqs", config=config)
        autoscaling = session.client("autoscaling", config=config)
    except NoRegionError as error:
        raise StartupError(str(error)) from error
    count_requests(sqs, counters)
    count_requests(autoscaling, counters)
    return WorkerClients(session, config, counters, sqs, autoscaling)


def worker_options(settings: Settings, sqs: SQSClient) -> WorkerOptions:
    visibility_timeout = settings.visibility_timeout or queue_visibility_timeout(sqs, settings.queue_url)
    try:
        return WorkerOptions(
            concurrency=settings.concurrency,
            visibility_timeout=visibility_timeout,
            wait_seconds=settings.wait_seconds,
            drain_seconds=settings.drain_seconds,
        )
    except ValueError as error:  # e.g. a queue whose visibility timeout is 0
        raise StartupError(f"{error}; pass --visibility-timeout") from error


def ec2_roles(settings: Settings, autoscaling: AutoScalingClient) -> Ec2Roles:
    """From instance metadata: the Auto Scaling group's hooks and scale-in protection, and Spot notices."""
    if os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return Ec2Roles()
    imds = Imds(settings.imds_url)
    target = find_asg_instance(imds, autoscaling)
    # On EC2, Spot notices come from instance metadata (an On-Demand instance never has one).
    spot = SpotWatcher(imds, poll_seconds=settings.spot_poll_seconds) if target or imds_answers(imds) else None
    if target is None:
        return Ec2Roles(spot=spot)
    hook = settings.lifecycle_hook
    return Ec2Roles(
        scale_in=ScaleInGuard(autoscaling, target),
        termination=TerminationWatcher(imds, AsgLifecycleActions(autoscaling, target, hook) if hook else None),
        spot=spot,
        start_gate=InServiceGate(imds),
        launch=AsgLifecycleActions(autoscaling, target, settings.launch_hook) if settings.launch_hook else None,
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


def build_video_handler(clients: WorkerClients, settings: Settings, metrics: MetricsEmitter) -> JobHandler:
    """The video job, with its S3 client (and KMS client, for client-side encrypted bodies) counted and the output
    bucket checked before any job starts."""
    from sqs_decoupling.worker_fleet.worker.video_jobs import (
        make_video_handler,  # imports the video library only when it is needed
    )

    # Each job uses S3 from its own thread, and a download or upload uses up to 10 connections (boto3's transfer
    # default): a pool of botocore's default 10 would discard connections ("Connection pool is full").
    s3_config = clients.config.merge(Config(max_pool_connections=s3_pool_size(settings.concurrency)))
    s3 = clients.session.client("s3", config=s3_config)
    count_requests(s3, clients.counters)
    check_output_bucket(s3, settings.output_bucket)
    kms = None
    if settings.body_key_arn:
        # Only needed for client-side encrypted bodies; created up front because jobs run in threads.
        kms = clients.session.client("kms", config=clients.config)
        count_requests(kms, clients.counters)
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
