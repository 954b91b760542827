"""One region resolution for every CLI: flag, the tool's variable, AWS_REGION, AWS_DEFAULT_REGION, the AWS profile,
the queue URL; and an error that names every source when none gives one."""

from __future__ import annotations

import pytest

from sqs_decoupling.regions.resolution import RegionNotFoundError, region_help, resolve_region

QUEUE_URL = "https://sqs.ap-south-1.amazonaws.com/123456789012/jobs"
EVERY_SOURCE = {"TOOL_REGION": "eu-west-1", "AWS_REGION": "eu-west-2", "AWS_DEFAULT_REGION": "eu-west-3"}


def _no_profile() -> None:
    return None


@pytest.mark.parametrize(
    ("flag", "environ", "profile", "expected"),
    [
        ("us-west-2", EVERY_SOURCE, "ca-central-1", "us-west-2"),
        (None, EVERY_SOURCE, "ca-central-1", "eu-west-1"),
        (None, EVERY_SOURCE | {"TOOL_REGION": ""}, "ca-central-1", "eu-west-2"),
        (None, {"AWS_DEFAULT_REGION": "eu-west-3"}, "ca-central-1", "eu-west-3"),
        (None, {}, "ca-central-1", "ca-central-1"),
        (None, {}, None, "ap-south-1"),
    ],
    ids=["flag", "tool variable", "AWS_REGION", "AWS_DEFAULT_REGION", "profile", "queue URL"],
)
def test_each_source_is_read_only_when_every_earlier_one_is_empty(
    flag: str | None, environ: dict[str, str], profile: str | None, expected: str
) -> None:
    # GIVEN regions in the sources from `environ` on (and the profile's), WHEN the region is resolved
    region = resolve_region(
        flag, tool_env="TOOL_REGION", environ=environ, queue_url=QUEUE_URL, configured=lambda: profile
    )

    # THEN the first source that names one wins
    assert region == expected


def test_aws_region_alone_is_enough_although_boto3_does_not_read_it() -> None:
    # GIVEN only AWS_REGION (what the Lambda runtime and the other SDKs set), and a queue URL without a region
    environ = {"AWS_REGION": "eu-central-1"}

    # WHEN the region is resolved THEN it is AWS_REGION's
    assert (
        resolve_region(
            None, tool_env="X_REGION", environ=environ, queue_url="http://localhost:5000/1/q", configured=_no_profile
        )
        == "eu-central-1"
    )


def test_no_source_gives_one_line_that_names_every_source_in_order() -> None:
    # GIVEN no flag, no variable, no profile region and a queue URL without a region
    # WHEN the region is resolved THEN the error names each source, in the order they are read
    with pytest.raises(RegionNotFoundError) as raised:
        resolve_region(
            None, tool_env="WORKER_REGION", environ={}, queue_url="http://localhost:5000/1/q", configured=_no_profile
        )
    message = str(raised.value)
    assert "\n" not in message
    positions = [message.index(name) for name in ("--region", "WORKER_REGION", "AWS_REGION ", "AWS_DEFAULT_REGION")]
    assert positions == sorted(positions)
    assert "queue URL" in message


def test_the_help_names_the_order() -> None:
    # GIVEN a tool's variable WHEN its --region help is written THEN it lists the sources in the order they are read
    text = region_help("SQS_SUBMIT_REGION")
    names = ("SQS_SUBMIT_REGION", "AWS_REGION,", "AWS_DEFAULT_REGION", "profile", "queue URL")
    assert [text.index(name) for name in names] == sorted(text.index(name) for name in names)
