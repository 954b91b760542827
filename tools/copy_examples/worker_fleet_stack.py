from aws_cdk import App

from sqs_decoupling.stacks.worker_fleet_stack import WorkerFleetStack

app = App()
WorkerFleetStack(app, "WorkerFleetStack")
app.synth()
