from aws_cdk import App, Stack

from sqs_decoupling.queue.encrypted_queue import EncryptedQueue

app = App()
stack = Stack(app, "MyQueueStack")
EncryptedQueue(stack, "Jobs")
app.synth()
