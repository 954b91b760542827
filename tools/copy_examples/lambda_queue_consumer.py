from aws_cdk import App, Duration, Stack
from aws_cdk import aws_lambda as lambda_

from sqs_decoupling.lambda_consumer.lambda_consumer import LambdaQueueConsumer, visibility_timeout_for
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue

app = App()
stack = Stack(app, "MyConsumerStack")
timeout, batching_window = Duration.seconds(30), Duration.seconds(5)
LambdaQueueConsumer(
    stack,
    "Consumer",
    jobs=EncryptedQueue(stack, "Jobs", visibility_timeout=visibility_timeout_for(timeout, batching_window)),
    code=lambda_.Code.from_inline("def handler(event, context):\n    return {'batchItemFailures': []}\n"),
    handler="index.handler",
    runtime=lambda_.Runtime.PYTHON_3_13,
    timeout=timeout,
    max_batching_window=batching_window,
)
app.synth()
