"""The worker's settings contract: the environment variable behind each option, its default and its limits.

The fleet stack imports these names to write the systemd unit's ``Environment=`` lines; the worker's parser
(``sqs_decoupling.worker_fleet.worker.config``) reads the same names, and a contract test parses the synthesized
unit with it. Every name is the Lambda consumer's name for the same setting with the ``WORKER_`` prefix where both
have it (``WORKER_MAX_VIDEO_BYTES``, ``WORKER_FFMPEG_MEMORY_MIB``, ...). Standard library only.
"""

from __future__ import annotations

from typing import Final

ENV_PREFIX: Final = "WORKER_"
QUEUE_URL_ENV: Final = "WORKER_QUEUE_URL"
OUTPUT_BUCKET_ENV: Final = "WORKER_OUTPUT_BUCKET"
CONCURRENCY_ENV: Final = "WORKER_CONCURRENCY"
VCPUS_ENV: Final = "WORKER_VCPUS"
VISIBILITY_TIMEOUT_ENV: Final = "WORKER_VISIBILITY_TIMEOUT"
WAIT_SECONDS_ENV: Final = "WORKER_WAIT_SECONDS"
MAX_VIDEO_BYTES_ENV: Final = "WORKER_MAX_VIDEO_BYTES"
DRAIN_SECONDS_ENV: Final = "WORKER_DRAIN_SECONDS"
LIFECYCLE_HOOK_ENV: Final = "WORKER_LIFECYCLE_HOOK"
LAUNCH_HOOK_ENV: Final = "WORKER_LAUNCH_HOOK"
SPOT_POLL_SECONDS_ENV: Final = "WORKER_SPOT_POLL_SECONDS"
BODY_KEY_ARN_ENV: Final = "WORKER_BODY_KEY_ARN"
PROFILE_ENV: Final = "WORKER_PROFILE"
REGION_ENV: Final = "WORKER_REGION"
IMDS_URL_ENV: Final = "WORKER_IMDS_URL"
LOG_LEVEL_ENV: Final = "WORKER_LOG_LEVEL"

MAX_CONCURRENCY: Final = 32
"""Most jobs one worker runs at once (``--concurrency``, ``WORKER_CONCURRENCY``, the stack's ``worker_concurrency``):
each job holds an ffmpeg of up to 1.5 GiB of address space, a disk copy of its upload and 10 S3 connections; past 32
jobs, more vCPUs serve better as threads of the jobs running than as more jobs on one instance
(``sqs_decoupling.contracts.worker_sizing``)."""
DEFAULT_CONCURRENCY: Final = 2
"""``WorkerOptions``' default jobs at once (a library default); the command line sizes it from the vCPUs and the
profile instead (:mod:`sqs_decoupling.contracts.worker_sizing`)."""
MAX_VCPUS: Final = 1024
DEFAULT_WAIT_SECONDS: Final = 20
DEFAULT_DRAIN_SECONDS: Final = 120.0
DEFAULT_PROFILE: Final = "transcode"
