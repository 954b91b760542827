"""A synthesis prints no deprecation warning. The one aws-cdk-lib prints on its own account (aws/aws-cdk#37833) is
filtered exactly (sqs_decoupling/common/upstream_warnings.py), and a test says when aws-cdk-lib no longer needs the
filter. The real CLI's synthesis of every stack is checked for any deprecation in the deploy rehearsal
(tests/integration/test_deploy_rehearsal.py)."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import pytest

from sqs_decoupling.common import upstream_warnings
from sqs_decoupling.common.upstream_warnings import STEP_SCALING_COOLDOWN_WARNING, without_step_scaling_cooldown_warning
from tools.localcloud.paths import REPO_ROOT


class _FakeStderr:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()


def test_exactly_the_cooldown_message_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the filter over stderr
    fake = _FakeStderr()
    monkeypatch.setattr(sys, "stderr", fake)
    without_step_scaling_cooldown_warning()
    without_step_scaling_cooldown_warning()  # idempotent: one filter, not two

    # WHEN jsii relays the cooldown message, another deprecation and a variant of the message
    other = b"[WARNING] aws-cdk-lib.aws_lambda.FunctionOptions#logRetention is deprecated\n  use `logGroup` instead\n"
    variant = STEP_SCALING_COOLDOWN_WARNING.replace(b"cooldown is not valid", b"cooldown is ignored")
    for message in (STEP_SCALING_COOLDOWN_WARNING, other, variant):
        sys.stderr.buffer.write(message)

    # THEN only the exact message is gone
    assert fake.buffer.getvalue() == other + variant
    assert isinstance(sys.stderr, upstream_warnings._Stderr) and sys.stderr._stream is fake


# A group with the project's step scaling, built in a fresh interpreter (jsii prints each deprecation once per
# process) with the filter switched off; it reports whether aws-cdk-lib printed the message (jsii relays it from
# another thread: wait for it, up to 30 s).
UNFILTERED = """
import sys, time
records = []
class Recorder:
    def write(self, data):
        records.append(data)
        return len(data)
class Stderr:
    buffer = Recorder()
    def write(self, text):
        return len(text)
    def flush(self):
        pass
sys.stderr = Stderr()
from aws_cdk import App, Stack, aws_autoscaling as autoscaling, aws_ec2 as ec2, aws_sqs as sqs
import sqs_decoupling.worker_fleet.queue_depth_scaling as scaling
scaling.without_step_scaling_cooldown_warning = lambda: None
stack = Stack(App(), "Fleet")
vpc = ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0,
              subnet_configuration=[ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)])
group = autoscaling.AutoScalingGroup(stack, "Group", vpc=vpc, instance_type=ec2.InstanceType("t4g.small"),
                                     machine_image=ec2.MachineImage.generic_linux({"us-east-1": "ami-12345678"}))
scaling.step_scaling(group, sqs.Queue(stack, "Jobs"), thresholds=[1], adjustments=[1],
                     worker_concurrency=1)
deadline = time.monotonic() + 30
while not any(b"#cooldown is deprecated" in r for r in records) and time.monotonic() < deadline:
    time.sleep(0.05)
print("printed" if STEP in records else "not printed: " + repr(records))
"""


@pytest.mark.slow
def test_aws_cdk_lib_still_prints_the_message_the_filter_drops() -> None:
    # GIVEN the project's step scaling without the filter WHEN a group is built THEN aws-cdk-lib prints exactly the
    # message the filter drops. When this fails, either aws-cdk-lib fixed aws/aws-cdk#37833 (delete
    # sqs_decoupling/common/upstream_warnings.py and its call) or it rewrote the message (update
    # STEP_SCALING_COOLDOWN_WARNING).
    code = f"STEP = {STEP_SCALING_COOLDOWN_WARNING!r}\n{UNFILTERED}"
    result: Any = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "printed"
