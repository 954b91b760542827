"""A warm pool for the queue worker fleet: stopped, pre-initialized instances that join the group faster than
instances launched cold.

An instance launched into the pool boots, runs its user data (the worker's install) and is then stopped; a scale-out
starts it again, skipping the install. Stopped instances cost their EBS volumes only, no instance hours
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html).

Auto Scaling stops an instance as soon as it has launched into the pool, without waiting for user data to finish
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-instance-lifecycle.html), so the pool comes with a
launch lifecycle hook: the instance waits in ``Warmed:Pending:Wait`` until the worker, started by the user data's
last command, completes the hook (``WORKER_LAUNCH_HOOK``). The hook pauses the instance again, in ``Pending:Wait``,
when it leaves the pool (and when a scale-out launches one directly into service): the worker, started again by
its enabled systemd unit (user data runs on the first boot only), completes it again. While the instance is
warming, the worker takes no job (its start gate reads ``Warmed:*`` as the target lifecycle state).

Auto Scaling refuses a warm pool on a group with a mixed instances policy or a launch template that requests Spot
Instances (PutWarmPool, Amazon EC2 Auto Scaling API reference): the pool is for an On-Demand group of one type.

Instances are not returned to the pool on scale-in (``reuse_on_scale_in`` stays off): a scale-in terminates them
through the termination hook the worker drains on.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_autoscaling as autoscaling

from sqs_decoupling.common.ranges import check_range

LAUNCH_HOOK_NAME: Final = "worker-started"
LAUNCH_TIMEOUT: Final = Duration.minutes(15)
"""How long a launching instance may take to install and start the worker before the hook gives up (ABANDON: an
instance whose worker never starts is terminated, neither kept in the pool nor put in service)."""


def add_warm_pool(
    group: autoscaling.AutoScalingGroup, *, min_size: int, max_instances: int
) -> tuple[autoscaling.WarmPool, autoscaling.LifecycleHook]:
    """Keep ``min_size`` (1..``max_instances``) stopped instances in a warm pool, and the launch hook the worker
    completes once started. The pool holds exactly ``min_size`` (its maximum prepared capacity is ``min_size``
    too, rather than the group's maximum less the instances in service, which would keep up to ``max_instances``
    volumes paid for)."""
    check_range(f"warm pool of '{group.node.path}': min_size", min_size, 1, max_instances, " instances")
    hook = group.add_lifecycle_hook(
        "WorkerStarted",
        lifecycle_hook_name=LAUNCH_HOOK_NAME,
        lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_LAUNCHING,
        heartbeat_timeout=LAUNCH_TIMEOUT,
        default_result=autoscaling.DefaultResult.ABANDON,
    )
    pool = group.add_warm_pool(
        min_size=min_size, max_group_prepared_capacity=min_size, pool_state=autoscaling.PoolState.STOPPED
    )
    return pool, hook
