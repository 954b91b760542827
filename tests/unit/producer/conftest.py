from tests.support.aws import aws, kms_keys_made_cheaply, s3, sqs  # noqa: F401  (pytest fixtures)
from tests.support.permissions.recorder import call_recorder  # noqa: F401  (pytest fixture)
