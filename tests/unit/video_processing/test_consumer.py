"""The consumers' core on its own: a message none of whose inputs could run is left on the queue, said once and
counted by the error's type, whatever raised."""

from __future__ import annotations

import logging
from typing import Any

from sqs_decoupling.contracts.envelope import ENCRYPTED_PREFIX
from sqs_decoupling.contracts.telemetry import MetricPoint
from sqs_decoupling.video.consumer import Consumer, handle_message

KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_an_unexpected_error_while_opening_a_body_leaves_it_queued_logged_once_and_counted() -> None:
    # GIVEN a consumer whose KMS client cannot even be created (say, no network route to KMS)
    def no_kms() -> Any:
        raise ConnectionError("KMS is unreachable")

    consumer = Consumer(
        s3_client=None,  # type: ignore[arg-type]  # never reached: the body is not opened
        output_bucket="outputs",
        profile="preview",
        max_bytes=10**6,
        body_key_arn=KEY_ARN,
        kms_client=no_kms,
    )

    # WHEN an encrypted body arrives
    result = handle_message(consumer, ENCRYPTED_PREFIX + "AAAA", message_id="m-1", queue_name="jobs", budget=None)

    # THEN no input ran, the error is what the adapter raises to keep the message, and it is said and counted once
    assert result.outcomes == ()
    assert isinstance(result.retry, ConnectionError)
    (line,) = result.logs
    assert line.level == logging.ERROR
    assert line.message.startswith("Transient failure: left on the queue")
    assert line.fields == {"message_id": "m-1", "error_type": "ConnectionError", "error": "KMS is unreachable"}
    assert result.metrics == (MetricPoint("TransientFailures", "Count", 1, {"error_type": "ConnectionError"}),)
