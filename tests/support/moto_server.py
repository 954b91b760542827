"""A moto server over real HTTP on a free localhost port, for tests and benchmarks.

    with moto_server() as endpoint_url:
        sqs = boto3.client("sqs", endpoint_url=endpoint_url, **DUMMY_CLIENT_ARGS)

Pass ``endpoint_url`` to boto3 clients in this process, or export it as ``AWS_ENDPOINT_URL`` (with
:data:`DUMMY_ENV`) to a subprocess: boto3 honours that variable itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer

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
    """Start a ThreadedMotoServer on a free port (port 0), yield its endpoint URL, stop it on exit."""
    # werkzeug logs one line per request to stderr; thousands of them drown test and benchmark output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        # "localhost", not 127.0.0.1: moto derives S3 bucket names from the host in some URLs.
        yield f"http://localhost:{port}"
    finally:
        server.stop()
