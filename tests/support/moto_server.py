"""A moto server over real HTTP on a free localhost port, for tests and benchmarks.

    with moto_server() as endpoint_url:
        sqs = boto3.client("sqs", endpoint_url=endpoint_url, **DUMMY_CLIENT_ARGS)
        wait_until(lambda: sqs.list_queues().get("QueueUrls"), timeout=5, what="a queue")

Pass ``endpoint_url`` to boto3 clients in this process, or export it as ``AWS_ENDPOINT_URL`` (with
:data:`DUMMY_ENV`) to a subprocess: boto3 honours that variable itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from moto.server import ThreadedMotoServer

from demo.moto_compat import s3_key_length_enforced

T = TypeVar("T")
REGION = "us-east-1"
DUMMY_CLIENT_ARGS = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@contextmanager
def moto_server() -> Iterator[str]:
    """Start a ThreadedMotoServer on a free port (port 0), yield its endpoint URL, stop it on exit.

    It refuses S3 keys over 1,024 bytes, as S3 does (stock moto accepts any length)."""
    # werkzeug logs one line per request to stderr; thousands of them drown test and benchmark output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with s3_key_length_enforced():
        server.start()
        try:
            _, port = server.get_host_and_port()
            # "localhost", not 127.0.0.1: moto derives S3 bucket names from the host in some URLs.
            yield f"http://localhost:{port}"
        finally:
            server.stop()


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
