"""See the scaling before you deploy: the synthesized WorkerFleetStack and VideoPipelineStack templates, simulated
second by second on AWS's clock (per-minute datapoints delivered late) on a workload (``make scaling``). Pure
Python; reads cdk.out, never imports aws_cdk.

- ``tools.scaling.template``: what the simulation reads from a cloud assembly;
- ``tools.scaling.policy``: the one rule (CloudWatch alarm + EC2 Auto Scaling policy decisions);
- ``tools.scaling.simulate``: the queue, CloudWatch's clock, the fleet (warm pool included) and the Lambda event source;
- ``tools.scaling.workload``: arrivals per minute; ``tools.scaling.report``: JSON, table, PNG;
- ``tools.scaling.prices``: the instance-hour and Lambda prices of the table's compute cost (``tools.cost`` builds on
  this package, never the reverse).
"""
