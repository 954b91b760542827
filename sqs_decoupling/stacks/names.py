"""The app's stack names, for code that must not import aws_cdk (the local cloud, the demo) and for the app."""

from __future__ import annotations

from typing import Final

STACK_NAMES: Final = ("SecureQueueStack", "VideoPipelineStack", "WorkerFleetStack")
