"""Video processing shared by the Lambda consumer and the EC2 / on-premises worker (its limits and profiles are
contracts: :mod:`sqs_decoupling.contracts.media`, :mod:`sqs_decoupling.contracts.profiles`)."""
