from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3

from sqs_decoupling.common.python_bundling import PythonBundle, package_sources
from sqs_decoupling.queue.encrypted_queue import EncryptedQueue
from sqs_decoupling.worker_fleet.fleet_network import FleetNetwork
from sqs_decoupling.worker_fleet.worker_fleet import QueueWorkerFleet
from sqs_decoupling.worker_fleet.worker_user_data import WorkerService

app = App()
stack = Stack(app, "MyFleetStack")
jobs = EncryptedQueue(stack, "Jobs")
flow_logs = s3.Bucket(stack, "FlowLogs", enforce_ssl=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL)
QueueWorkerFleet(
    stack,
    "Workers",
    jobs=jobs,
    network=FleetNetwork(stack, "Network", flow_logs_bucket=flow_logs),
    # Your worker: my_worker/ beside app.py, with its requirements and their lock (`uv pip compile
    # --generate-hashes`) for the instances' Python and architecture.
    bundle=PythonBundle(
        sources=package_sources("my_worker"),
        requirements="my_worker/requirements.txt",
        architecture="arm64",
        python_version="3.11",
    ),
    service=WorkerService(
        name="my-worker",
        command=("/usr/bin/python3.11", "-m", "my_worker"),
        packages=("python3.11",),
        log_file="/var/log/my-worker.log",
    ),
    environment={"QUEUE_URL": jobs.queue.queue_url},
    instance_type=ec2.InstanceType("t4g.small"),
    notifications_topic=jobs.alarm_topic,
    notifications_key=jobs.key,
    emf_endpoint="udp://127.0.0.1:25888",  # where the CloudWatch agent takes EMF metrics
)
app.synth()
