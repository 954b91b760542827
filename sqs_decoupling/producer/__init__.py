"""Send video jobs for objects already in S3 to a queue, in the same shape S3's own notifications have
(:mod:`sqs_decoupling.producer.submit`; the command line: :mod:`sqs_decoupling.producer.cli`)."""
