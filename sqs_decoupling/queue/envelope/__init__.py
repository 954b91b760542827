"""Client-side (envelope) encryption of SQS message bodies with a KMS key, through the AWS Encryption SDK
(:mod:`sqs_decoupling.queue.envelope.envelope`)."""
