"""A moto server over real HTTP on a free localhost port, for the demo, tests and benchmarks.

    with moto_server() as endpoint_url:
        sqs = client("sqs", endpoint_url)
        wait_until(lambda: sqs.list_queues().get("QueueUrls"), timeout=5, what="a queue")

Pass ``endpoint_url`` to boto3 clients in this process (:func:`client`, or ``boto3.client(...,
**DUMMY_CLIENT_ARGS)``), or export it as ``AWS_ENDPOINT_URL`` (with :data:`DUMMY_ENV`) to a subprocess: boto3
honours that variable itself.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from tools.localcloud import moto_compat

if TYPE_CHECKING:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from mypy_boto3_sqs import SQSClient

T = TypeVar("T")
ACCOUNT = "123456789012"
"""The account id moto uses for everything it creates."""
REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
DUMMY_ENV = DUMMY_CREDENTIALS | {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
"""Environment variables that point the AWS SDK and CLI at no real account (add ``AWS_ENDPOINT_URL``)."""
DUMMY_CLIENT_ARGS: dict[str, Any] = {
    "region_name": REGION,
    "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
}
"""Keyword arguments for ``boto3.client(service, endpoint_url=..., **DUMMY_CLIENT_ARGS)``."""

_running = 0
_running_lock = threading.Lock()


def client(service: str, endpoint_url: str, **config: Any) -> Any:
    """A boto3 client for the moto server at ``endpoint_url`` (standard retries, 3 attempts)."""
    import boto3
    from botocore.config import Config

    # Any: boto3's overloads type a client per service name literal; callers annotate the client they expect.
    return boto3.client(  # type: ignore[call-overload]  # a str, not one of the overloads' service literals
        service,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, **config),
        **DUMMY_CLIENT_ARGS,
    )


@contextmanager
def moto_server(*, all_work_arounds: bool = True) -> Iterator[str]:
    """Start a ThreadedMotoServer on a free port (port 0), yield ``http://localhost:<port>``, stop it on exit.

    moto's patches are process-wide. With ``all_work_arounds`` (the default), every work-around in
    :mod:`tools.localcloud.moto_compat` is applied while any such server of this process runs (S3 events with
    ``versionId``, the CloudFormation fixes...), and stock moto comes back after the last one stops. Without, only
    S3's 1,024-byte key limit is enforced, and KMS keys get their private key when first used (which saves CPU): for
    a server that lives as long as a test session, whose process also runs in-process moto tests that expect stock
    moto's S3 events. ``localhost``, not 127.0.0.1: moto derives S3 bucket names from the host in some URLs (cdk
    deploy's template URLs among them).
    """
    _quiet_moto()
    with _work_arounds() if all_work_arounds else _session_work_arounds():
        server = _quick_stopping_server()
        server.start()
        try:
            yield f"http://localhost:{server.get_host_and_port()[1]}"
        finally:
            server.stop()


def _quick_stopping_server() -> ThreadedMotoServer:
    """A ThreadedMotoServer on a free port whose ``stop()`` takes milliseconds. Its werkzeug server looks for a
    shutdown request once per ``poll_interval`` of ``serve_forever``, 0.5 s unless given, and every stop waited that
    out: this one polls every 50 ms (moto's own ``_server_entry``, the same in every release of
    moto_compat.TESTED_WITH, with that interval), and its dispatcher finds the backend of a host name once, not at every
    request."""
    from moto.core.utils import get_service_model
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class RememberingDispatcher(DomainDispatcherApplication):
        """moto's dispatcher, remembering the backend of each host name it has seen: moto's own looks it up again on
        every request, listing its package's folders (a stat for each of 174) and then trying every service's URL
        patterns, about 0.4 ms of CPU a request. The answer depends only on the host name."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._backends: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            if host not in self._backends:
                self._backends[host] = super().get_backend_for_host(host)
            return self._backends[host]

    class QuickStoppingMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            # moto reads S3's service model (botocore's JSON) at the first response that needs it and caches it, with
            # no lock: `cdk deploy` publishes its assets in parallel, and every request thread that came before the
            # cache was filled read the model again (8 times in the deploy rehearsal: 2.7 s in all, one read 0.03 s).
            get_service_model("s3")
            app = RememberingDispatcher(create_backend_app)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.05)

    return QuickStoppingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)


def _quiet_moto() -> None:
    # werkzeug logs one line per request to stderr; thousands of them drown test, benchmark and demo output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto logs and warns about each resource type its CloudFormation skips, and about Docker being absent when a
    # custom resource would need a Lambda run; the demo and the deploy rehearsal report those themselves.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="Tried to parse .* but it's not supported by moto", category=UserWarning)


@contextmanager
def _session_work_arounds() -> Iterator[None]:
    """S3's key length limit, and KMS private keys made only when used (a saving in CPU, the same behaviour)."""
    with moto_compat.s3_key_length_enforced(), moto_compat.kms_private_keys_when_used():
        yield


@contextmanager
def _work_arounds() -> Iterator[None]:
    """Apply the work-arounds for the first server; nested servers (a test's own inside another) share them."""
    global _running
    with _running_lock:
        if _running == 0:
            moto_compat.apply()
        _running += 1
    try:
        yield
    finally:
        with _running_lock:
            _running -= 1
            if _running == 0:
                moto_compat.revert()  # code that runs later in this process (other tests) gets stock moto


def wait_until(condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``condition`` until it returns something truthy (and return that), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def queue_depth(sqs: SQSClient, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages: ApproximateNumberOfMessages and ...NotVisible (exact on moto)."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])
