"""One region resolution for every CLI (``video-worker``, ``sqs-submit``, ...), in this order:

1. the ``--region`` flag;
2. the tool's own variable (``WORKER_REGION``, ``SQS_SUBMIT_REGION``, ...);
3. ``AWS_REGION`` (what the AWS SDKs for other languages and the Lambda runtime set; boto3 does not read it);
4. ``AWS_DEFAULT_REGION`` (what boto3 and the AWS CLI read);
5. the region of the AWS profile in use (``region`` in ``~/.aws/config``), as boto3 would find it;
6. the region in the queue URL (``https://sqs.eu-west-1.amazonaws.com/...``).

No dependencies beyond boto3: the worker's asset vendors this package.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

AWS_REGION_ENV: Final = "AWS_REGION"
AWS_DEFAULT_REGION_ENV: Final = "AWS_DEFAULT_REGION"

# https://sqs.<region>.amazonaws.com/... (and sqs-<region>), or the legacy https://<region>.queue.amazonaws.com/...
_QUEUE_URL = re.compile(r"https://(?:sqs[.-]([a-z0-9-]+)|([a-z]{2}(?:-[a-z]+)+-\d)\.queue)\.amazonaws\.com(\.cn)?/")


class RegionNotFoundError(Exception):
    """No source named a region; the message lists every source, in the order they are read."""


def region_from_queue_url(queue_url: str | None) -> str | None:
    """``https://sqs.eu-west-1.amazonaws.com/123456789012/jobs`` -> ``eu-west-1``; None for any other URL."""
    match = _QUEUE_URL.match(queue_url or "")
    return (match.group(1) or match.group(2)) if match else None


def profile_region() -> str | None:
    """The region boto3 finds in the AWS configuration of the profile in use (None if none, or no such profile)."""
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.session.Session().region_name
    except BotoCoreError:  # e.g. AWS_PROFILE names a profile that does not exist
        return None


def resolve_region(
    flag: str | None,
    *,
    tool_env: str,
    environ: Mapping[str, str],
    queue_url: str | None = None,
    configured: Callable[[], str | None] = profile_region,
) -> str:
    """The region to call AWS in, from the first source that names one (see the module docstring for the order).

    Raises :class:`RegionNotFoundError` naming every source when none does.
    """
    for candidate in (flag, environ.get(tool_env), environ.get(AWS_REGION_ENV), environ.get(AWS_DEFAULT_REGION_ENV)):
        if candidate and candidate.strip():
            return candidate.strip()
    region = configured() or region_from_queue_url(queue_url)
    if region:
        return region
    raise RegionNotFoundError(
        f"no AWS region: pass --region, or set {tool_env}, {AWS_REGION_ENV} or {AWS_DEFAULT_REGION_ENV} "
        "(or a region in the AWS profile, or use a queue URL of the form https://sqs.<region>.amazonaws.com/...)"
    )


def region_help(tool_env: str) -> str:
    """The ``--help`` text of a ``--region`` flag: the order the region is looked for in."""
    return (
        f"AWS region; default: {tool_env}, then {AWS_REGION_ENV}, then {AWS_DEFAULT_REGION_ENV}, then the AWS "
        "profile's region, then the region in the queue URL"
    )
