"""User data that installs a Python queue worker on Amazon Linux 2023 and runs it as a systemd service.

The worker comes as zipped S3 assets (its Linux wheels, then its code, see ``python_bundling``); the instance needs no
internet access: the Python interpreter and the CloudWatch agent are AL2023 packages, whose repositories are served
from S3. The worker's output goes to a log file that the CloudWatch agent ships, together with the EMF metric
documents the agent receives, to one log group.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3_assets as s3_assets

CLOUDWATCH_AGENT_PACKAGE = "amazon-cloudwatch-agent"
CLOUDWATCH_AGENT_CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
CLOUDWATCH_AGENT_ETC = "/opt/aws/amazon-cloudwatch-agent/etc"
# systemd's stop: SIGTERM, then this long beyond the worker's drain time before SIGKILL.
STOP_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class WorkerService:
    """A worker as a systemd service: ``name`` (the unit, /opt/<name>), the ``command`` it runs from its install
    folder (e.g. ``("/usr/bin/python3.11", "-m", "sqs_decoupling.worker_fleet.worker")``), the dnf ``packages`` it
    needs (its Python, e.g. ``("python3.11",)``), the ``log_file`` its output is appended to, and ``executables``: globs
    in the asset whose executable bit Python's zipfile drops (e.g. a static ffmpeg)."""

    name: str
    command: tuple[str, ...]
    packages: tuple[str, ...]
    log_file: str
    executables: tuple[str, ...] = ()

    @property
    def install_dir(self) -> str:
        return f"/opt/{self.name}"

    @property
    def unit_file(self) -> str:
        return f"/etc/systemd/system/{self.name}.service"

    @property
    def agent_config_file(self) -> str:
        return f"{CLOUDWATCH_AGENT_ETC}/{self.name}.json"

    @property
    def python(self) -> str:
        """The interpreter that unpacks the asset: the command's own."""
        return self.command[0]


def install_user_data(
    service: WorkerService,
    archives: Sequence[s3_assets.Asset],
    *,
    environment: Mapping[str, str],
    drain_seconds: int,
    log_group_name: str,
    emf_endpoint: str,
) -> ec2.UserData:
    """Install the service's packages and the CloudWatch agent, unpack the ``archives`` (zipped assets) in order
    into the install folder, start the agent and the service."""
    user_data = ec2.UserData.for_linux()
    # First of all: a failed download must stop the script, not leave a half-installed instance running.
    user_data.add_commands("set -euo pipefail")
    # Not UserData.add_s3_download_command: its unquoted `mkdir -p $(dirname ...)` fails shellcheck (SC2046).
    downloaded = {f"/tmp/{a.s3_object_key}": a for a in archives}  # noqa: S108 -- the instance's own /tmp, at boot
    user_data.add_commands(
        *(f"aws s3 cp 's3://{a.s3_bucket_name}/{a.s3_object_key}' '{path}'" for path, a in downloaded.items()),
        f"dnf install -y {' '.join((*service.packages, CLOUDWATCH_AGENT_PACKAGE))}",
        f"mkdir -p {service.install_dir} {posixpath.dirname(service.log_file)}",
        *(f"{service.python} -m zipfile -e {path} {service.install_dir}" for path in downloaded),
        # Python's zipfile drops the executable bits: binaries shipped in wheels need theirs back.
        *(f"chmod 755 {service.install_dir}/{pattern}" for pattern in service.executables),
        f"cat > {service.agent_config_file} <<'CONFIG'",
        json.dumps(cloudwatch_agent_config(log_group_name, service.log_file, emf_endpoint), indent=2),
        "CONFIG",
        f"{CLOUDWATCH_AGENT_CTL} -a fetch-config -m ec2 -s -c file:{service.agent_config_file}",
        f"cat > {service.unit_file} <<'UNIT'",
        *systemd_unit(service, environment, drain_seconds=drain_seconds),
        "UNIT",
        "systemctl daemon-reload",
        f"systemctl enable --now {service.name}",
    )
    return user_data


def cloudwatch_agent_config(log_group_name: str, log_file: str, emf_endpoint: str) -> dict[str, object]:
    """The CloudWatch agent's configuration: tail ``log_file`` into the log group, one stream per instance, and
    listen for EMF metric documents on ``emf_endpoint`` (which CloudWatch Logs turns into metrics)."""
    return {
        "logs": {
            "logs_collected": {
                "files": {
                    "collect_list": [
                        {"file_path": log_file, "log_group_name": log_group_name, "log_stream_name": "{instance_id}"}
                    ]
                }
            },
            "metrics_collected": {"emf": {"service_address": emf_endpoint}},
        }
    }


def systemd_unit(service: WorkerService, environment: Mapping[str, str], *, drain_seconds: int) -> list[str]:
    """The service's systemd unit, line by line."""
    return [
        "[Unit]",
        f"Description={service.name} (SQS queue worker)",
        "After=network-online.target",
        "Wants=network-online.target",
        "[Service]",
        # A user made up by systemd for this service: no login, nothing to create in user data.
        "DynamicUser=yes",
        f"WorkingDirectory={service.install_dir}",
        f"Environment=PYTHONPATH={service.install_dir}",
        *(f"Environment={name}={value}" for name, value in environment.items()),
        f"ExecStart={' '.join(service.command)}",
        # Log lines into the file the CloudWatch agent tails (journald keeps nothing after scale-in).
        f"StandardOutput=append:{service.log_file}",
        f"StandardError=append:{service.log_file}",
        # On stop, SIGTERM to the worker only: it stops receiving, drains its jobs and completes the lifecycle
        # action. Whatever is left of the unit (child processes) gets SIGKILL after TimeoutStopSec.
        "KillMode=mixed",
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={drain_seconds + STOP_MARGIN_SECONDS}",
        "Restart=always",
        "RestartSec=5",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
