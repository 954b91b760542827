"""The decision the fleet's step-scaling policy would take for a backlog (moto skips alarms and scaling policies).

Mirrors stacks/constructs/queue_depth_scaling.step_scaling: the alarm watches ApproximateNumberOfMessagesVisible
(Maximum over one minute); at least ``thresholds[i]`` visible messages adds ``adjustments[i]`` instances (change in
capacity), never above ``worker_max_instances``; scale-in to zero only after ``scale_in_empty_minutes`` minutes with
nothing visible and nothing in flight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StepScaling:
    thresholds: Sequence[int]
    adjustments: Sequence[int]
    max_instances: int
    empty_minutes: int

    @classmethod
    def from_config(cls, context: Mapping[str, Any]) -> StepScaling:
        """From cdk.json's context (the same keys AppConfig reads)."""
        return cls(
            thresholds=tuple(int(t) for t in context["scale_out_thresholds"]),
            adjustments=tuple(int(a) for a in context["scale_out_adjustments"]),
            max_instances=int(context["worker_max_instances"]),
            empty_minutes=int(context["scale_in_empty_minutes"]),
        )

    def adjustment(self, visible: int) -> int:
        """Instances the scale-out step adds for ``visible`` messages (0 below the first threshold)."""
        change = 0
        for threshold, adjustment in zip(self.thresholds, self.adjustments, strict=True):
            if visible >= threshold:
                change = adjustment
        return change

    def desired(self, visible: int, current: int = 0) -> int:
        return min(self.max_instances, current + self.adjustment(visible))

    def explain(self, visible: int, current: int = 0) -> str:
        bounds: list[int | None] = [*self.thresholds, None]
        step = "below the first threshold"
        for i, threshold in enumerate(self.thresholds):
            upper = bounds[i + 1]
            if visible >= threshold and (upper is None or visible < upper):
                step = f"step [{threshold}, {upper if upper is not None else 'inf'})"
        return (
            f"backlog {visible} visible (thresholds {list(self.thresholds)} -> +{list(self.adjustments)}): {step}, "
            f"+{self.adjustment(visible)} instance(s): {current} -> {self.desired(visible, current)} of max "
            f"{self.max_instances}; back to 0 after {self.empty_minutes} min with nothing visible or in flight"
        )
