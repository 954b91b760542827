"""``sqs-submit`` as a user runs it (a process of its own, against the moto server): the region from AWS_REGION
alone, and one line of its own on stderr for a bad flag or a bad key, nothing from a library before it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tools.localcloud.server import ACCOUNT, DUMMY_CREDENTIALS, REGION


@pytest.fixture
def submit(moto_endpoint: str, client: Callable[[str], Any]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``submit(*flags, env=...)``: run ``sqs-submit submit`` for one uploaded object to a new queue, with only the
    given AWS variables (and the moto endpoint) in its environment, no AWS config file."""
    name = f"submit-{uuid.uuid4().hex[:12]}"
    client("s3").create_bucket(Bucket=name)
    client("s3").put_object(Bucket=name, Key="uploads/a.mp4", Body=b"video bytes")
    queue_url = client("sqs").create_queue(QueueName=name)["QueueUrl"]

    def run(*flags: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": "/usr/bin:/bin",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": moto_endpoint,
            **DUMMY_CREDENTIALS,
            **env,
        }
        command = [
            sys.executable,
            "-m",
            "sqs_decoupling.producer",
            "submit",
            f"s3://{name}/uploads/a.mp4",
            "--queue-url",
            queue_url,
        ]
        return subprocess.run([*command, *flags], env=environment, capture_output=True, text=True, timeout=60)

    return run


def test_aws_region_alone_gives_the_region(submit: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    # GIVEN only AWS_REGION (no AWS_DEFAULT_REGION, no profile; the moto queue URL names no region)
    # WHEN sqs-submit runs
    result = submit(env={"AWS_REGION": REGION})

    # THEN the job is sent
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1] == "sent 1 job(s) in 1 SendMessageBatch call(s)"


def test_no_region_anywhere_is_one_line_naming_every_source(
    submit: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    # GIVEN no region in any source WHEN sqs-submit runs
    result = submit(env={})

    # THEN it exits 2 with one line that names where a region is looked for
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("sqs-submit: no AWS region: pass --region, or set SQS_SUBMIT_REGION, AWS_REGION")


@pytest.mark.parametrize("value", ["-5", "0", "1023", "1048577", "lots"])
def test_a_message_size_out_of_range_is_one_line_and_exit_2(
    submit: Callable[..., subprocess.CompletedProcess[str]], value: str
) -> None:
    # GIVEN a --max-message-size-bytes SQS could never take WHEN sqs-submit runs
    result = submit("--max-message-size-bytes", value, env={"AWS_REGION": REGION})

    # THEN one line names the flag and the allowed range, exit code 2, nothing sent
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("sqs-submit: error: argument --max-message-size-bytes: ")
    assert ("1,024..1,048,576 bytes" in result.stderr) or ("not a whole number" in result.stderr)
    assert result.stdout == ""


def test_a_key_that_does_not_exist_is_one_line_of_the_tools_own(
    submit: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    # GIVEN the ARN of a KMS key that does not exist (the Encryption SDK tries it and logs the failure)
    key_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000"

    # WHEN sqs-submit is asked to encrypt with it
    result = submit("--encrypt-with-key", key_arn, env={"AWS_REGION": REGION})

    # THEN stderr is the tool's one line (with KMS's error code), no Encryption SDK log line before it
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("sqs-submit: cannot encrypt the job bodies, nothing was sent: ")
    assert "(KMS error: NotFoundException)" in result.stderr
