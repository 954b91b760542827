"""A queue worker for Amazon SQS that runs the same on EC2 (in an Auto Scaling group) and on premises.

Build one with :class:`sqs_decoupling.worker_fleet.worker.consumer.QueueWorker` and any
:data:`sqs_decoupling.worker_fleet.worker.job.JobHandler`, or run the video worker: ``python -m
sqs_decoupling.worker_fleet.worker``.
"""
