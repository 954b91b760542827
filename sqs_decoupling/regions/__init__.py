"""The AWS region every command-line tool of this project uses, found the same way by each (see
:mod:`sqs_decoupling.regions.resolution`)."""

from sqs_decoupling.regions.resolution import RegionNotFoundError, region_from_queue_url, region_help, resolve_region

__all__ = ["RegionNotFoundError", "region_from_queue_url", "region_help", "resolve_region"]
