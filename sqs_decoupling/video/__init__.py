"""Video processing shared by the Lambda consumer and the EC2 / on-premises worker."""

from sqs_decoupling.video.errors import (
    EmptyObjectError,
    FfmpegError,
    InputLimitError,
    MalformedMessageError,
    NotAVideoError,
    ObjectGoneError,
    ObjectReplacedError,
    OutputKeyTooLongError,
    PermanentJobError,
    ResourceCeilingError,
    TooLargeError,
    UndecodableError,
)
from sqs_decoupling.video.ffmpeg import VideoInfo, probe
from sqs_decoupling.video.jobs import VideoJob, jobs_from_sqs_body, sqs_body_for
from sqs_decoupling.video.limits import DEFAULT_LIMITS, MediaLimits
from sqs_decoupling.video.processing import JobResult, Profile, process_video, record_failure
from sqs_decoupling.video.profiles import PROFILES, UnknownProfileError, VideoProfile, get_profile

__all__ = [
    "DEFAULT_LIMITS",
    "PROFILES",
    "EmptyObjectError",
    "FfmpegError",
    "InputLimitError",
    "JobResult",
    "MalformedMessageError",
    "MediaLimits",
    "NotAVideoError",
    "ObjectGoneError",
    "ObjectReplacedError",
    "OutputKeyTooLongError",
    "PermanentJobError",
    "Profile",
    "ResourceCeilingError",
    "TooLargeError",
    "UndecodableError",
    "UnknownProfileError",
    "VideoInfo",
    "VideoJob",
    "VideoProfile",
    "get_profile",
    "jobs_from_sqs_body",
    "probe",
    "process_video",
    "record_failure",
    "sqs_body_for",
]
