from tests.support.aws import aws, s3  # noqa: F401  (pytest fixtures)
from tests.support.videos import ffmpeg_calls  # noqa: F401  (pytest fixture)
from tests.unit.video_processing.buckets import buckets  # noqa: F401  (pytest fixture)
from tests.unit.video_processing.corpus import edge_case_corpus  # noqa: F401  (pytest fixture)
