"""One message of aws-cdk-lib's own, kept out of every synthesis: nothing else is filtered.

``[WARNING] aws-cdk-lib.aws_autoscaling.StepScalingActionProps#cooldown is deprecated ...`` is printed on every
synthesis with step scaling, although this project passes no cooldown: aws-cdk-lib's ``StepScalingPolicy`` (what
``AutoScalingGroup.scale_on_metric`` builds) always hands ``cooldown: undefined`` to the two ``StepScalingAction``s it
makes, and jsii's deprecation check tests whether the key is present, not whether it is set. Only aws-cdk-lib can
remove the cause: https://github.com/aws/aws-cdk/issues/37833 (fix proposed in aws/aws-cdk#37836). Until a release
has it, :func:`without_step_scaling_cooldown_warning` drops exactly that message (jsii relays the CDK's console
output to ``sys.stderr.buffer``, one write per message); any other warning, deprecation or not, still shows.
``tests/unit/stacks/test_quiet_synthesis.py`` fails when a synthesis prints any deprecation warning.
"""

from __future__ import annotations

import sys
from typing import IO, Any

STEP_SCALING_COOLDOWN_WARNING = (
    b"[WARNING] aws-cdk-lib.aws_autoscaling.StepScalingActionProps#cooldown is deprecated, and will be removed in the "
    b"next major release.\n  cooldown is not valid with step scaling action\n"
)
"""The message, as aws-cdk-lib 2.275 prints it (one write)."""


class _Buffer:
    def __init__(self, buffer: IO[bytes]) -> None:
        self._buffer = buffer

    def write(self, data: bytes) -> int:
        if data == STEP_SCALING_COOLDOWN_WARNING:
            return len(data)
        return self._buffer.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._buffer, name)


class _Stderr:
    """``sys.stderr`` as it was, but its ``buffer`` drops the one message."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.buffer = _Buffer(stream.buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def without_step_scaling_cooldown_warning() -> None:
    """Keep aws-cdk-lib's spurious step scaling cooldown deprecation off stderr (idempotent; see the module doc)."""
    if not isinstance(sys.stderr, _Stderr) and hasattr(sys.stderr, "buffer"):
        sys.stderr = _Stderr(sys.stderr)
