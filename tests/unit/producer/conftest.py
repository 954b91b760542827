from tests.support.aws import aws, one_rsa_pair_for_symmetric_keys, s3, sqs  # noqa: F401  (pytest fixtures)
from tests.support.permissions.recorder import call_recorder  # noqa: F401  (pytest fixture)
