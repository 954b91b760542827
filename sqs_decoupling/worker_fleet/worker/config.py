"""The worker's settings: command-line options, each with an environment variable fallback, validated into
:class:`Settings`.

The environment-variable names, defaults and limits are the contract in :mod:`sqs_decoupling.contracts.worker`: the
fleet stack imports them from there to write the systemd unit's ``Environment=`` lines, and a contract test parses
the synthesized unit with :func:`parse_settings`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

from sqs_decoupling.contracts import worker_sizing
from sqs_decoupling.contracts.media import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_VIDEO_BYTES,
    LIMIT_VARIABLES,
    MAX_S3_OBJECT_BYTES,
    MIB,
    LimitSettingError,
    MediaLimits,
    limits_from_environment,
)
from sqs_decoupling.contracts.profiles import UnknownProfileError, get_profile
from sqs_decoupling.contracts.sqs import MAX_VISIBILITY_TIMEOUT_SECONDS
from sqs_decoupling.contracts.telemetry import (
    CLOUDWATCH_AGENT_EMF_ENDPOINT,
    WORKER_METRICS_ENDPOINT_ENV,
    WORKER_METRICS_LOG_GROUP_ENV,
)
from sqs_decoupling.contracts.worker import (
    BODY_KEY_ARN_ENV,
    CONCURRENCY_ENV,
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_PROFILE,
    DEFAULT_WAIT_SECONDS,
    DRAIN_SECONDS_ENV,
    ENV_PREFIX,
    IMDS_URL_ENV,
    LAUNCH_HOOK_ENV,
    LIFECYCLE_HOOK_ENV,
    LOG_LEVEL_ENV,
    MAX_CONCURRENCY,
    MAX_VCPUS,
    MAX_VIDEO_BYTES_ENV,
    OUTPUT_BUCKET_ENV,
    PROFILE_ENV,
    QUEUE_URL_ENV,
    REGION_ENV,
    SPOT_POLL_SECONDS_ENV,
    VCPUS_ENV,
    VISIBILITY_TIMEOUT_ENV,
    WAIT_SECONDS_ENV,
)
from sqs_decoupling.regions.resolution import region_help
from sqs_decoupling.worker_fleet.worker.imds import DEFAULT_IMDS_URL
from sqs_decoupling.worker_fleet.worker.spot import MAX_POLL_SECONDS, MIN_POLL_SECONDS
from sqs_decoupling.worker_fleet.worker.spot import POLL_SECONDS as DEFAULT_SPOT_POLL_SECONDS


@dataclass(frozen=True)
class Settings:
    queue_url: str
    output_bucket: str
    concurrency: int
    visibility_timeout: int | None
    """None: use the queue's own visibility timeout."""
    wait_seconds: int
    max_video_bytes: int
    drain_seconds: float
    lifecycle_hook: str | None
    region: str | None
    imds_url: str
    log_level: str
    body_key_arn: str | None = None
    """KMS key to open client-side encrypted bodies with; None: such bodies fail (and reach the DLQ)."""
    metrics_endpoint: str | None = None
    """Where EMF metric documents go (udp://host:port or tcp://host:port); None: no metrics."""
    metrics_log_group: str | None = None
    """The log group EMF documents name (``_aws.LogGroupName``); None: the receiver's default."""
    profile: str = DEFAULT_PROFILE
    """The video profile each job makes (``sqs_decoupling.contracts.profiles.PROFILES``)."""
    limits: MediaLimits = DEFAULT_LIMITS
    """What one upload may use of the machine (``WORKER_FFMPEG_MEMORY_MIB``, ...)."""
    launch_hook: str | None = None
    """The launch lifecycle hook (a warm pool's) to complete once the worker has started; None: there is none."""
    spot_poll_seconds: float = DEFAULT_SPOT_POLL_SECONDS
    """How often Spot interruption notices and rebalance recommendations are read from instance metadata."""


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def _bounded_seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _seconds(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value:g} is outside {low:g}..{high:g} seconds")
        return value

    return parse


def _profile(text: str) -> str:
    # A type, not argparse's choices: choices are not checked for a default (the environment's value).
    try:
        return get_profile(text).name
    except UnknownProfileError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _metrics_endpoint(text: str) -> str:
    from sqs_decoupling.worker_fleet.worker.metrics import parse_endpoint

    try:
        parse_endpoint(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _add_option(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str],
    flag: str,
    env: str,
    help_text: str,
    *,
    default: str | None = None,
    type: Callable[[str], object] = str,
    choices: Sequence[str] | None = None,
) -> None:
    # argparse runs a string default through `type`, so values from the environment are validated too.
    parser.add_argument(
        flag, default=environ.get(env, default), type=type, choices=choices, help=f"{help_text} [{env}]"
    )


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The worker's options, each with its environment variable, in the order ``--help`` lists them."""
    parser = OneLineErrorParser(
        prog="video-worker",
        description="Consume video jobs from an SQS queue (on EC2 or on premises). "
        "Every option can also be set with the environment variable shown. AWS credentials come from the "
        "standard AWS chain (AWS_PROFILE, instance profile, ...); the region as --region says.",
        epilog="exit codes: 0 stopped by SIGTERM or Ctrl-C after draining (a JSON summary on stdout); "
        "1 could not start (stderr says why: region, queue, credentials); 2 a missing or invalid option.",
    )
    option = functools.partial(_add_option, parser, environ)
    _queue_options(option)
    _fleet_options(option)
    _job_options(option)
    option("--region", REGION_ENV, region_help(REGION_ENV))
    option("--imds-url", IMDS_URL_ENV, "instance metadata endpoint", default=DEFAULT_IMDS_URL)
    option(
        "--log-level",
        LOG_LEVEL_ENV,
        "DEBUG, INFO, WARNING or ERROR (default INFO)",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    return parser


_Option = Callable[..., None]


def _queue_options(option: _Option) -> None:
    """Where jobs come from and go, and how many run at once."""
    option("--queue-url", QUEUE_URL_ENV, "URL of the jobs queue (required)")
    option("--output-bucket", OUTPUT_BUCKET_ENV, "bucket for outputs and failure records (required)")
    option(
        "--concurrency",
        CONCURRENCY_ENV,
        f"jobs run at once, 1..{MAX_CONCURRENCY} (default: one per vCPU for a profile that encodes, two per vCPU "
        "for one that does not; see sqs_decoupling/contracts/worker_sizing.py)",
        type=_bounded_int(1, MAX_CONCURRENCY),
    )
    option(
        "--vcpus",
        VCPUS_ENV,
        "vCPUs to size the default concurrency for (default: the CPUs this process may use); ffmpeg threads per "
        "job are always this machine's CPUs / concurrency, unless WORKER_FFMPEG_THREADS is set",
        type=_bounded_int(1, MAX_VCPUS),
    )
    option(
        "--visibility-timeout",
        VISIBILITY_TIMEOUT_ENV,
        "seconds a received message stays hidden, extended while its job runs (default: the queue's)",
        type=_bounded_int(1, MAX_VISIBILITY_TIMEOUT_SECONDS),
    )
    option(
        "--wait-seconds",
        WAIT_SECONDS_ENV,
        f"long-poll wait per receive (default {DEFAULT_WAIT_SECONDS})",
        default=str(DEFAULT_WAIT_SECONDS),
        type=_bounded_int(0, 20),
    )


def _fleet_options(option: _Option) -> None:
    """Draining, lifecycle hooks and Spot notices (on EC2 in an Auto Scaling group)."""
    option(
        "--drain-seconds",
        DRAIN_SECONDS_ENV,
        f"on shutdown, time jobs get to finish (default {DEFAULT_DRAIN_SECONDS:.0f})",
        default=str(DEFAULT_DRAIN_SECONDS),
        type=_seconds,
    )
    option("--lifecycle-hook", LIFECYCLE_HOOK_ENV, "termination lifecycle hook to complete after draining")
    option(
        "--launch-hook",
        LAUNCH_HOOK_ENV,
        "launch lifecycle hook to complete once started (a warm pool's: the instance is initialized)",
    )
    option(
        "--spot-poll-seconds",
        SPOT_POLL_SECONDS_ENV,
        f"how often to read Spot interruption notices from instance metadata (default {DEFAULT_SPOT_POLL_SECONDS:g}, "
        "AWS's recommendation)",
        default=str(DEFAULT_SPOT_POLL_SECONDS),
        type=_bounded_seconds(MIN_POLL_SECONDS, MAX_POLL_SECONDS),
    )


def _job_options(option: _Option) -> None:
    """What each job may take and make, and where its metrics go."""
    option(
        "--max-video-bytes",
        MAX_VIDEO_BYTES_ENV,
        f"largest video accepted in bytes (default {DEFAULT_MAX_VIDEO_BYTES}, {DEFAULT_MAX_VIDEO_BYTES // MIB} MiB; "
        "at most S3's largest object)",
        default=str(DEFAULT_MAX_VIDEO_BYTES),
        type=_bounded_int(1, MAX_S3_OBJECT_BYTES),
    )
    option(
        "--body-key-arn",
        BODY_KEY_ARN_ENV,
        "KMS key ARN to decrypt client-side encrypted message bodies (default: none; plain bodies need none)",
    )
    option(
        "--metrics-endpoint",
        WORKER_METRICS_ENDPOINT_ENV,
        "send job metrics as CloudWatch EMF to udp://host:port or tcp://host:port, e.g. the CloudWatch agent's "
        f"{CLOUDWATCH_AGENT_EMF_ENDPOINT} (default: none)",
        type=_metrics_endpoint,
    )
    option(
        "--metrics-log-group",
        WORKER_METRICS_LOG_GROUP_ENV,
        "log group the EMF documents name, so the CloudWatch agent files them there (default: the agent's own)",
    )
    option(
        "--profile",
        PROFILE_ENV,
        f"video profile each job makes (default {DEFAULT_PROFILE})",
        default=DEFAULT_PROFILE,
        type=_profile,
    )
    for name in LIMIT_VARIABLES.values():
        # Checked together in parse_settings (MediaLimits), which names the variable of a bad value.
        option(f"--{name.lower().replace('_', '-')}", ENV_PREFIX + name, "media limit (default: MediaLimits')")


RENAMED_VARIABLES: Final = {"WORKER_MAX_BYTES": MAX_VIDEO_BYTES_ENV}
"""Environment variables an earlier release read, and their names now."""


def parse_settings(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Settings:
    """Parse flags over environment variables; exits with a usage message (status 2) on a bad or missing one."""
    parser = build_parser(environ)
    args = parser.parse_args(argv)
    for old, new in RENAMED_VARIABLES.items():
        if environ.get(old):  # an old unit file would otherwise lose its setting without a word
            parser.error(f"{old} was renamed {new} after release 0.2.0: rename it in the environment (or unset it)")
    if not args.queue_url:
        parser.error(f"the queue URL is missing: pass --queue-url or set {QUEUE_URL_ENV}")
    if not args.output_bucket:
        parser.error(f"the output bucket is missing: pass --output-bucket or set {OUTPUT_BUCKET_ENV}")
    given = {ENV_PREFIX + name: getattr(args, name.lower()) or "" for name in LIMIT_VARIABLES.values()}
    try:
        limits = limits_from_environment(given, ENV_PREFIX)
    except LimitSettingError as error:
        parser.error(f"{error} (a flag's value is reported under its variable)")
    encodes = bool(get_profile(args.profile).ladder)
    concurrency = args.concurrency or worker_sizing.default_concurrency(
        args.vcpus or worker_sizing.machine_vcpus(),
        encodes=encodes,
        memory_bytes=worker_sizing.machine_memory_bytes(),
        ffmpeg_memory_bytes=limits.ffmpeg_memory_bytes,
    )
    if not given[ENV_PREFIX + LIMIT_VARIABLES["ffmpeg_threads"]]:
        limits = dataclasses.replace(
            limits, ffmpeg_threads=worker_sizing.ffmpeg_threads(worker_sizing.machine_vcpus(), concurrency)
        )
    return Settings(
        queue_url=args.queue_url,
        output_bucket=args.output_bucket,
        concurrency=concurrency,
        visibility_timeout=args.visibility_timeout,
        wait_seconds=args.wait_seconds,
        max_video_bytes=args.max_video_bytes,
        drain_seconds=args.drain_seconds,
        lifecycle_hook=args.lifecycle_hook or None,
        launch_hook=args.launch_hook or None,
        spot_poll_seconds=args.spot_poll_seconds,
        region=args.region or None,
        imds_url=args.imds_url,
        log_level=args.log_level,
        body_key_arn=args.body_key_arn or None,
        metrics_endpoint=args.metrics_endpoint or None,
        metrics_log_group=args.metrics_log_group or None,
        profile=args.profile,
        limits=limits,
    )


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2 (no usage block: ``--help`` has it)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)
