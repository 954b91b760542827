"""The AWS region every command-line tool of this project uses, found the same way by each (see
:mod:`sqs_decoupling.regions.resolution`)."""
