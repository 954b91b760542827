"""Fixtures for the worker's integration tests: one moto server over HTTP for the session, clients, queues,
a fake instance metadata service, and workers run in a background thread."""

from __future__ import annotations

import http.server
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from sqs_decoupling.worker_fleet.worker.autoscaling import AsgInstance, ScaleInGuard, TerminationWatcher
from sqs_decoupling.worker_fleet.worker.consumer import QueueWorker, StartGate, WorkerOptions
from sqs_decoupling.worker_fleet.worker.counters import Counters, count_requests
from sqs_decoupling.worker_fleet.worker.imds import Imds
from sqs_decoupling.worker_fleet.worker.job import JobHandler
from sqs_decoupling.worker_fleet.worker.spot import SpotWatcher
from tests.support.permissions.recorder import call_recorder  # noqa: F401  (pytest fixture)
from tools.localcloud.server import DUMMY_CLIENT_ARGS, DUMMY_ENV, moto_server

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session; every test makes its own uniquely named resources on it. Only S3's key
    length limit is patched in: the session outlives the in-process moto tests this process may also run."""
    with moto_server(all_work_arounds=False) as endpoint_url:
        yield endpoint_url


@pytest.fixture
def dummy_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real AWS: dummy credentials, and nothing from the caller's shell (profiles, endpoints) leaks in."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def client(moto_endpoint: str, dummy_aws_env: None) -> Callable[[str], Any]:
    """``client("sqs")``: a new boto3 client for the moto server (new, so request counting stays per test)."""
    return lambda service: boto3.client(service, endpoint_url=moto_endpoint, **DUMMY_CLIENT_ARGS)  # type: ignore[call-overload]


@pytest.fixture
def sqs(client: Callable[[str], Any]) -> SQSClient:
    """The test's own SQS client, for setting up and inspecting queues (the worker gets another one)."""
    return client("sqs")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Queues:
    url: str
    dlq_url: str | None


@pytest.fixture
def make_queue(sqs: SQSClient) -> Callable[..., Queues]:
    """``make_queue(visibility_timeout=30, max_receive_count=None)``: a fresh queue, with a DLQ if asked."""

    def make(*, visibility_timeout: int = 30, max_receive_count: int | None = None) -> Queues:
        name = f"jobs-{uuid.uuid4().hex[:12]}"
        attributes = {"VisibilityTimeout": str(visibility_timeout)}
        dlq_url = None
        if max_receive_count is not None:
            dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            )
        return Queues(url=sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"], dlq_url=dlq_url)

    return make


def send_messages(sqs: SQSClient, queue_url: str, bodies: list[str]) -> list[str]:
    """Send ``bodies`` (SendMessageBatch, ten per call); return the message ids in order."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        response = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
        )
        assert not response.get("Failed")
        by_entry = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
        ids.extend(by_entry[str(i)] for i in range(len(chunk)))
    return ids


@dataclass
class RunningWorker:
    """A QueueWorker running ``run()`` in a background thread."""

    worker: QueueWorker
    thread: threading.Thread

    @property
    def counters(self) -> Counters:
        return self.worker.counters

    def stop(self, timeout: float = 30.0) -> None:
        """Ask for a drain and wait until ``run()`` has returned."""
        self.worker.request_stop("test finished")
        self.join(timeout)

    def join(self, timeout: float = 30.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the worker did not stop in time"


TEST_PACING: dict[str, Any] = {"wait_seconds": 1, "delete_linger_seconds": 0.05}
"""WorkerOptions that only set the pace, for workers in tests. A 1 s long poll, SQS's shortest: a stop waits for the
poll in progress (the worker never cuts one short). Deletes that linger 50 ms instead of 0.5 s for others to fill a
DeleteMessageBatch: tests that wait for a job's delete wait that long; a test of the batching passes the worker's
own linger."""


@pytest.fixture
def start_worker(client: Callable[[str], Any]) -> Iterator[Callable[..., RunningWorker]]:
    """``start_worker(queue_url, handler, sqs=None, scale_in=None, termination=None, spot=None, start_gate=None,
    on_abandon=None, **WorkerOptions)``.

    Pass ``sqs`` to watch the worker's own client (register event hooks on it first). Unless a test passes its own,
    the options of :data:`TEST_PACING` keep tests from waiting out production pacing; every worker started is
    stopped when the test ends.
    """
    running: list[RunningWorker] = []

    def start(
        queue_url: str,
        handler: JobHandler,
        *,
        sqs: SQSClient | None = None,
        scale_in: ScaleInGuard | None = None,
        termination: TerminationWatcher | None = None,
        spot: SpotWatcher | None = None,
        start_gate: StartGate | None = None,
        on_abandon: Callable[[], None] | None = None,
        **options: Any,
    ) -> RunningWorker:
        worker_sqs = sqs or client("sqs")
        counters = Counters()
        count_requests(worker_sqs, counters)
        worker = QueueWorker(
            worker_sqs,
            queue_url,
            handler,
            WorkerOptions(**TEST_PACING | options),
            scale_in=scale_in,
            termination=termination,
            spot=spot,
            start_gate=start_gate,
            on_abandon=on_abandon,
            counters=counters,
        )
        thread = threading.Thread(target=worker.run, name="test-worker", daemon=True)
        thread.start()
        running.append(RunningWorker(worker, thread))
        return running[-1]

    yield start
    for each in running:
        each.stop()


@dataclass
class FakeImds:
    """A local stand-in for the EC2 instance metadata service (IMDSv2: a token is required for every GET)."""

    metadata: dict[str, str] = field(default_factory=dict)
    url: str = ""
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    """The one session token accepted; change it to expire the tokens handed out so far."""
    token_requests: int = 0

    def imds(self) -> Imds:
        """The worker's IMDS client for this fake, with a 10 s timeout instead of 1 s: the real IMDS is a link-local
        service that answers in milliseconds; this one is a thread of the test process, which a loaded machine (the
        suite's other processes) can keep from answering for over a second."""
        return Imds(self.url, timeout_seconds=10)


@pytest.fixture
def fake_imds() -> Iterator[FakeImds]:
    """Serves ``fake_imds.metadata[path]`` at ``/latest/meta-data/<path>``; change the dict to change answers."""
    imds = FakeImds()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                imds.token_requests += 1
                self._reply(200, imds.token)
            else:
                self._reply(400, "")

        def do_GET(self) -> None:
            if self.headers.get("X-aws-ec2-metadata-token") != imds.token:
                self._reply(401, "")
                return
            value = imds.metadata.get(self.path.removeprefix("/latest/meta-data/"))
            self._reply(200, value) if value is not None else self._reply(404, "")

        def _reply(self, status: int, body: str) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    imds.url = f"http://127.0.0.1:{server.server_address[1]}"
    # Looks for the shutdown below every 50 ms, not every 0.5 s (serve_forever's default), which each test waited out.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield imds
    server.shutdown()
    thread.join()


@pytest.fixture
def asg_instance(client: Callable[[str], Any], fake_imds: FakeImds) -> AsgInstance:
    """A one-instance Auto Scaling group on moto, and IMDS answering as that instance."""
    ec2, autoscaling = client("ec2"), client("autoscaling")
    name = f"workers-{uuid.uuid4().hex[:8]}"
    ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=1,
        MaxSize=1,
        DesiredCapacity=1,
        AvailabilityZones=["us-east-1a"],
    )
    (instance,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
        "Instances"
    ]
    fake_imds.metadata["instance-id"] = instance["InstanceId"]
    return AsgInstance(instance_id=instance["InstanceId"], group_name=name)


@pytest.fixture
def worker_env(moto_endpoint: str, dummy_aws_env: None) -> dict[str, str]:
    """Environment for ``python -m sqs_decoupling.worker_fleet.worker`` as a subprocess: the moto server via
    AWS_ENDPOINT_URL, dummy
    credentials, no instance metadata lookups (the test machine is not an EC2 instance)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WORKER_"))}
    return env | DUMMY_ENV | {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
