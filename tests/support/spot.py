"""What EC2 writes to instance metadata for a Spot Instance, as tests post it to a fake IMDS."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime


def interruption_notice(seconds_from_now: float) -> str:
    """``spot/instance-action`` as EC2 writes it: the action and when (UTC, whole seconds) it happens."""
    when = datetime.fromtimestamp(time.time() + seconds_from_now, tz=UTC)
    return json.dumps({"action": "terminate", "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")})
