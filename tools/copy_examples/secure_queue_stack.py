from aws_cdk import App

from sqs_decoupling.stacks.secure_queue_stack import SecureQueueStack

app = App()
SecureQueueStack(app, "SecureQueueStack")
app.synth()
