"""The worker's settings contract: command-line options, each with an environment variable fallback, validated
into :class:`Settings`.

The environment-variable names and defaults are module constants: the fleet stack imports them to write the
systemd unit's ``Environment=`` lines (stacks -> worker is allowed; the worker never imports ``stacks``), and a
contract test parses the synthesized unit with :func:`parse_settings`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

from sqs_decoupling.contracts.sqs import MAX_VISIBILITY_TIMEOUT_SECONDS
from sqs_decoupling.regions import region_help
from sqs_decoupling.video.limits import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_VIDEO_BYTES,
    LIMIT_VARIABLES,
    LimitSettingError,
    MediaLimits,
    limits_from_environment,
)
from sqs_decoupling.video.profiles import UnknownProfileError, get_profile
from sqs_decoupling.video.telemetry import (
    CLOUDWATCH_AGENT_EMF_ENDPOINT,
    WORKER_METRICS_ENDPOINT_ENV,
    WORKER_METRICS_LOG_GROUP_ENV,
)
from sqs_decoupling.worker_fleet.worker import sizing
from sqs_decoupling.worker_fleet.worker.imds import DEFAULT_IMDS_URL
from sqs_decoupling.worker_fleet.worker.spot import MAX_POLL_SECONDS, MIN_POLL_SECONDS
from sqs_decoupling.worker_fleet.worker.spot import POLL_SECONDS as DEFAULT_SPOT_POLL_SECONDS

ENV_PREFIX: Final = "WORKER_"
QUEUE_URL_ENV: Final = "WORKER_QUEUE_URL"
OUTPUT_BUCKET_ENV: Final = "WORKER_OUTPUT_BUCKET"
CONCURRENCY_ENV: Final = "WORKER_CONCURRENCY"
VCPUS_ENV: Final = "WORKER_VCPUS"
VISIBILITY_TIMEOUT_ENV: Final = "WORKER_VISIBILITY_TIMEOUT"
WAIT_SECONDS_ENV: Final = "WORKER_WAIT_SECONDS"
MAX_BYTES_ENV: Final = "WORKER_MAX_BYTES"
DRAIN_SECONDS_ENV: Final = "WORKER_DRAIN_SECONDS"
LIFECYCLE_HOOK_ENV: Final = "WORKER_LIFECYCLE_HOOK"
LAUNCH_HOOK_ENV: Final = "WORKER_LAUNCH_HOOK"
SPOT_POLL_SECONDS_ENV: Final = "WORKER_SPOT_POLL_SECONDS"
BODY_KEY_ARN_ENV: Final = "WORKER_BODY_KEY_ARN"
PROFILE_ENV: Final = "WORKER_PROFILE"
REGION_ENV: Final = "WORKER_REGION"
IMDS_URL_ENV: Final = "WORKER_IMDS_URL"
LOG_LEVEL_ENV: Final = "WORKER_LOG_LEVEL"

DEFAULT_CONCURRENCY: Final = 2
"""``WorkerOptions``' default jobs at once (a library default); the command line sizes it from the vCPUs and the
profile instead (:mod:`sqs_decoupling.worker_fleet.worker.sizing`)."""
MAX_CONCURRENCY: Final = sizing.MAX_CONCURRENCY
MAX_VCPUS: Final = 1024
DEFAULT_WAIT_SECONDS: Final = 20
DEFAULT_DRAIN_SECONDS: Final = 120.0
DEFAULT_PROFILE: Final = "transcode"
MAX_BYTES_LIMIT: Final = 5 * 1024**4


@dataclass(frozen=True)
class Settings:
    queue_url: str
    output_bucket: str
    concurrency: int
    visibility_timeout: int | None
    """None: use the queue's own visibility timeout."""
    wait_seconds: int
    max_bytes: int
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
    """The video profile each job makes (``sqs_decoupling.video.profiles.PROFILES``)."""
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
        "for one that does not; see sqs_decoupling/worker_fleet/worker/sizing.py)",
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
        "--max-bytes",
        MAX_BYTES_ENV,
        f"largest video accepted in bytes (default {DEFAULT_MAX_VIDEO_BYTES}, 200 MiB)",
        default=str(DEFAULT_MAX_VIDEO_BYTES),
        type=_bounded_int(1, MAX_BYTES_LIMIT),
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


def parse_settings(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Settings:
    """Parse flags over environment variables; exits with a usage message (status 2) on a bad or missing one."""
    parser = build_parser(environ)
    args = parser.parse_args(argv)
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
    concurrency = args.concurrency or sizing.default_concurrency(
        args.vcpus or sizing.machine_vcpus(),
        encodes=encodes,
        memory_bytes=sizing.machine_memory_bytes(),
        ffmpeg_memory_bytes=limits.ffmpeg_memory_bytes,
    )
    if not given[ENV_PREFIX + LIMIT_VARIABLES["ffmpeg_threads"]]:
        limits = dataclasses.replace(limits, ffmpeg_threads=sizing.ffmpeg_threads(sizing.machine_vcpus(), concurrency))
    return Settings(
        queue_url=args.queue_url,
        output_bucket=args.output_bucket,
        concurrency=concurrency,
        visibility_timeout=args.visibility_timeout,
        wait_seconds=args.wait_seconds,
        max_bytes=args.max_bytes,
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
