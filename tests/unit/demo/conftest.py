from tests.support.aws import aws, s3  # noqa: F401  (pytest fixtures)
