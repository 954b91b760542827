from tests.support.aws import aws, s3, sqs  # noqa: F401  (pytest fixtures)
