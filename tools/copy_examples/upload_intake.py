from aws_cdk import App, Stack

from sqs_decoupling.intake.buckets import access_logs_bucket
from sqs_decoupling.intake.upload_intake import UploadIntake
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue

app = App()
stack = Stack(app, "MyIntakeStack")
UploadIntake(stack, "Uploads", jobs=EncryptedQueue(stack, "Jobs"), access_logs=access_logs_bucket(stack, "AccessLogs"))
app.synth()
