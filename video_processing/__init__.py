"""Video processing shared by the Lambda consumer and the EC2 / on-premises worker."""

from video_processing.errors import (
    EmptyObjectError,
    FfmpegError,
    MalformedMessageError,
    NotAVideoError,
    ObjectGoneError,
    PermanentJobError,
    TooLargeError,
)
from video_processing.ffmpeg import VideoInfo, probe
from video_processing.jobs import VideoJob, jobs_from_sqs_body, sqs_body_for
from video_processing.processing import JobResult, Profile, process_video, record_failure

__all__ = [
    "EmptyObjectError",
    "FfmpegError",
    "JobResult",
    "MalformedMessageError",
    "NotAVideoError",
    "ObjectGoneError",
    "PermanentJobError",
    "Profile",
    "TooLargeError",
    "VideoInfo",
    "VideoJob",
    "jobs_from_sqs_body",
    "probe",
    "process_video",
    "record_failure",
    "sqs_body_for",
]
