from tests.support.aws import aws, s3  # noqa: F401  (pytest fixtures)
from tests.support.videos import ffmpeg_calls  # noqa: F401  (pytest fixture)
