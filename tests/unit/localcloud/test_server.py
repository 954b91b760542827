"""The local moto server: a free port, the moto work-arounds while any server runs, stock moto afterwards."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import moto.core.utils as moto_utils
import pytest
from moto.core.utils import get_service_model
from moto.s3.models import s3_backends

from tools.localcloud import moto_compat
from tools.localcloud.server import ACCOUNT, REGION, client, moto_server


def test_a_nested_server_keeps_the_work_arounds_until_the_outer_one_stops() -> None:
    # GIVEN a server (a test session's) and a second one started inside it (a test's own)
    with moto_server() as outer:
        with moto_server() as inner:
            assert inner != outer
            assert moto_compat.APPLIED
        # WHEN the inner one stops
        # THEN the outer one still runs with the work-arounds applied, and answers
        assert moto_compat.APPLIED
        assert client("sqs", outer).list_queues().get("QueueUrls", []) == []
    # AND once the last server stops, moto is stock again
    assert moto_compat.APPLIED == []


def test_requests_that_arrive_together_read_s3s_service_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN moto's cache of service models empty, and each read of a model (botocore's JSON) counted
    get_service_model.cache_clear()
    reads: Counter[tuple[str, str]] = Counter()
    read = moto_utils._load_service_model

    def counted(service: str, model: str) -> Any:
        reads[service, model] += 1
        return read(service, model)

    monkeypatch.setattr(moto_utils, "_load_service_model", counted)
    with moto_server() as endpoint:
        clients = [client("s3", endpoint) for _ in range(8)]
        s3_backends[ACCOUNT]["global"].create_bucket("assets", REGION)  # (a request would read the model first)
        # WHEN eight requests whose answers moto builds from S3's model arrive at once, as `cdk deploy` publishes its
        # assets in parallel
        together = threading.Barrier(len(clients))

        def list_objects(s3: Any) -> int:
            together.wait()
            return int(s3.list_objects_v2(Bucket="assets")["KeyCount"])

        with ThreadPoolExecutor(len(clients)) as pool:
            counts = list(pool.map(list_objects, clients))
    # THEN each was answered, and the model was read once, not once for each request that came before it was cached
    assert counts == [0] * len(clients)
    assert reads["s3", "service-2"] == 1
