"""The demo's "flow" step: upload the samples, re-submit some (duplicates on purpose), drain both queues with the
real consumers, and read what they did from the output buckets and the queues.

The Lambda path is the real handler behind :class:`tools.localcloud.poller.EventSourcePoller` (in this process); the
fleet path is the real worker, ``python -m sqs_decoupling.worker_fleet.worker``, as a subprocess stopped with SIGTERM
at the end.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqs_decoupling.contracts.media import MIB
from sqs_decoupling.stacks.config import AppConfig
from tools.demo.outcomes import decided_keys, read_outcomes
from tools.demo.videos import SampleObject
from tools.localcloud.cdk import StepFailed, cdk_env
from tools.localcloud.lambda_local import HandlerLog, load_handler
from tools.localcloud.poller import EventSourcePoller
from tools.localcloud.server import client, queue_depth
from tools.localcloud.worker_process import WorkerProcess

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

FLOW_TIMEOUT_SECONDS = 300
# How many valid videos each path's producer re-submits after S3 announced them.
RESUBMITTED = {"lambda": 1, "fleet": 2}


@dataclass(frozen=True)
class ConsumerPath:
    """One consumer path as deployed: ``outputs`` are its stack's outputs (queue URLs, bucket names)."""

    key: str
    name: str
    outputs: Mapping[str, str]

    @property
    def queue_url(self) -> str:
        return self.outputs["QueueUrl"]

    @property
    def uploads(self) -> str:
        return self.outputs["UploadsBucketName"]

    @property
    def processed(self) -> str:
        return self.outputs["ProcessedBucketName"]


@dataclass
class PathResult:
    """One consumer path's numbers for the summary."""

    name: str
    submitted: int = 0
    resubmitted: int = 0
    processed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    in_dlq: int = 0
    left_in_queue: int = 0
    repeated: int = 0
    sqs_requests: int = 0
    outputs: int = 0
    seconds: float = 0.0


@dataclass
class FlowResult:
    paths: list[PathResult]
    backlog: int
    """Visible messages in the fleet queue before any consumer ran: what the scaling alarm would see."""
    batch_sizes: list[int]
    """The batches the local event source invoked the Lambda handler with."""


class Flow:
    """Runs the flow against the moto server at ``endpoint``; ``say`` prints a line of progress."""

    def __init__(self, endpoint: str, config: AppConfig, work_dir: Path, say: Callable[[str], None]) -> None:
        self.endpoint = endpoint
        self.prefix = config.upload_prefix
        self.batch_size = config.lambda_batch_size
        self.max_video_bytes = config.max_video_mb * MIB
        # What the fleet's instances run (worker_concurrency, else the sizing rule for the instance type).
        self.worker_concurrency = config.worker_fleet_settings().busy.concurrency
        self.work_dir = work_dir
        self.say = say
        self.s3: S3Client = client("s3", endpoint)
        self.sqs: SQSClient = client("sqs", endpoint)

    def run(self, pipeline: Mapping[str, str], fleet: Mapping[str, str], objects: list[SampleObject]) -> FlowResult:
        paths = [
            ConsumerPath("lambda", "Lambda (video pipeline)", pipeline),
            ConsumerPath("fleet", "EC2 worker fleet", fleet),
        ]
        results = {path.key: self.submit(path, objects) for path in paths}
        self.say(
            f"uploaded {len(objects)} objects to each uploads bucket; re-submitted {results['lambda'].resubmitted} "
            f"+ {results['fleet'].resubmitted} of them with the producer (duplicates on purpose)"
        )
        time.sleep(1)  # let S3's notifications arrive: the backlog a CloudWatch alarm would see before any consumer
        backlog = queue_depth(self.sqs, fleet["QueueUrl"])[0]
        started = time.monotonic()
        with self.consumers(paths[0], paths[1]) as (poller, worker):
            self.wait_for_outcomes(paths, len(objects), worker, started)
        elapsed = time.monotonic() - started
        for path in paths:
            self.collect(path, results[path.key], elapsed)
        results["lambda"].sqs_requests = poller.counters.total_requests("sqs")
        final = worker.final or {}
        results["fleet"].sqs_requests = sum(n for op, n in final.get("requests", {}).items() if op.startswith("sqs."))
        return FlowResult(list(results.values()), backlog, list(poller.batch_sizes))

    def submit(self, path: ConsumerPath, objects: list[SampleObject]) -> PathResult:
        """Upload every object (S3 announces each to the queue), then re-submit some videos with the producer."""
        from sqs_decoupling.producer.submit import jobs_from_s3_uris, submit_jobs

        result = PathResult(path.name)
        for obj in objects:
            self.s3.put_object(Bucket=path.uploads, Key=self.prefix + obj.key, Body=obj.data)
            result.submitted += 1
        # At-least-once made visible: a producer re-submits jobs for videos S3 already announced (sqs-submit).
        videos = [o for o in objects if o.valid][: RESUBMITTED[path.key]]
        uris = [f"s3://{path.uploads}/{self.prefix}{o.key}" for o in videos]
        report = submit_jobs(self.sqs, path.queue_url, jobs_from_s3_uris(self.s3, uris))
        result.resubmitted = len(report.sent)
        result.submitted += len(report.sent)
        return result

    @contextmanager
    def consumers(
        self, lambda_path: ConsumerPath, fleet_path: ConsumerPath
    ) -> Iterator[tuple[EventSourcePoller, WorkerProcess]]:
        """The real handler behind the local event source (a thread) and the real worker (a process); on exit the
        poller stops and the worker gets SIGTERM and drains."""
        log = HandlerLog(self.work_dir / "lambda-handler.log")
        handler = load_handler(output_bucket=lambda_path.processed, max_video_bytes=self.max_video_bytes, log=log)
        poller = EventSourcePoller(
            client("sqs", self.endpoint), lambda_path.queue_url, handler, batch_size=self.batch_size
        )
        stop = threading.Event()
        thread = threading.Thread(target=poller.run, args=(stop,), name="event-source-poller", daemon=True)
        worker = WorkerProcess(
            queue_url=fleet_path.queue_url,
            output_bucket=fleet_path.processed,
            env=cdk_env(self.endpoint),
            log_path=self.work_dir / "worker.log",
            concurrency=self.worker_concurrency,
        )
        thread.start()
        try:
            yield poller, worker
        finally:
            stop.set()
            thread.join(timeout=30)
            code = worker.stop()
            log.close()
            self.say(f"worker stopped with SIGTERM (drained), exit code {code}")

    def wait_for_outcomes(self, paths: list[ConsumerPath], keys: int, worker: WorkerProcess, started: float) -> None:
        """Until every uploaded key has a final outcome in its output bucket and both queues are empty (nothing
        visible, nothing in flight: the duplicates and S3's test event are consumed too), with live progress."""
        interactive = sys.stdout.isatty()
        last_print = 0.0
        while True:
            line, finished = self.progress(paths, keys, started)
            now = time.monotonic()
            if interactive:
                print("\r   " + line, end="", flush=True)
            elif now - last_print >= 2 or finished:
                self.say(line)
                last_print = now
            if finished:
                break
            if worker.process.poll() is not None:
                raise StepFailed(
                    f"the worker exited early with code {worker.process.returncode}; see {worker.log_path}"
                )
            if now - started > FLOW_TIMEOUT_SECONDS:
                raise StepFailed(f"the flow did not finish in {FLOW_TIMEOUT_SECONDS} s: {line}")
            time.sleep(0.5)
        if interactive:
            print(flush=True)

    def progress(self, paths: list[ConsumerPath], keys: int, started: float) -> tuple[str, bool]:
        """One progress line (queue depths, keys with an outcome) and whether both paths are done."""
        parts = [f"t={time.monotonic() - started:5.1f}s"]
        finished = True
        for path in paths:
            visible, in_flight = queue_depth(self.sqs, path.queue_url)
            decided = decided_keys(self.s3, path.processed)
            parts.append(f"{path.key} queue {visible:>2} visible {in_flight:>2} in flight | outcomes {decided}/{keys}")
            finished = finished and decided >= keys and visible + in_flight == 0
        return " | ".join(parts), finished

    def collect(self, path: ConsumerPath, result: PathResult, elapsed: float) -> None:
        """Fill ``result`` from the output bucket and the queues."""
        outcomes = read_outcomes(self.s3, path.processed, upload_prefix=self.prefix)
        result.processed = outcomes.processed
        result.failures = outcomes.failures
        result.outputs = outcomes.outputs
        result.repeated = outcomes.repeated
        result.in_dlq = sum(queue_depth(self.sqs, path.outputs["DeadLetterQueueUrl"]))
        result.left_in_queue = sum(queue_depth(self.sqs, path.queue_url))
        result.seconds = elapsed
