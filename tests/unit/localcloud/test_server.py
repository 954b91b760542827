"""The local moto server: a free port, the moto work-arounds while any server runs, stock moto afterwards."""

from __future__ import annotations

from tools.localcloud import moto_compat
from tools.localcloud.server import client, moto_server


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
