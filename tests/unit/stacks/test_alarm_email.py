"""alarm_email: every stack's alarm topic e-mails the address, and keeps what it cannot deliver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template


@pytest.fixture(scope="module")
def with_email(synth_with: Any) -> Mapping[str, Template]:
    return synth_with(alarm_email="ops@example.com")  # type: ignore[no-any-return]


@pytest.mark.parametrize("stack", ["SecureQueueStack", "VideoPipelineStack", "WorkerFleetStack"])
def test_each_alarm_topic_emails_the_address_with_an_encrypted_tls_only_dead_letter_queue(
    with_email: dict[str, Template], stack: str
) -> None:
    template = with_email[stack]
    # GIVEN the e-mail subscription of the stack's alarm topic
    subscriptions = template.find_resources("AWS::SNS::Subscription")
    assert len(subscriptions) == 1
    subscription = next(iter(subscriptions.values()))["Properties"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")
    # THEN undeliverable notifications go to a queue encrypted with the alarm key, kept 14 days, TLS only
    dlq_id = subscription["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    dlq_resource = template.to_json()["Resources"][dlq_id]
    dlq = dlq_resource["Properties"]
    topic = template.to_json()["Resources"][subscription["TopicArn"]["Ref"]]["Properties"]
    assert dlq["KmsMasterKeyId"] == topic["KmsMasterKeyId"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    # AND, unlike the work queues' dead-letter queues, it goes with its stack (as the README's security model says)
    assert dlq_resource["DeletionPolicy"] == "Delete"
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": dlq_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "sns.amazonaws.com"},
                                "Condition": {"ArnEquals": {"aws:SourceArn": subscription["TopicArn"]}},
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_without_alarm_email_nobody_is_subscribed(templates: dict[str, Template]) -> None:
    for template in templates.values():
        template.resource_count_is("AWS::SNS::Subscription", 0)
