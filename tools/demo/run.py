"""``python -m tools.demo`` (``make demo``): deploy every stack into moto server with the real CDK CLI, push real videos
through the real Lambda handler and the real worker, print what happened, destroy, stop.

Steps: moto server -> synth -> bootstrap -> deploy -> inspect (what moto skipped) -> wire up (what moto could not
do) -> videos -> upload -> flow -> summary -> destroy -> stop. Whatever happens (a failure, Ctrl-C), the stacks are
destroyed and the server is stopped, and the step that failed is named. With ``--keep``, the stacks stay up after the
summary until Ctrl-C (see :meth:`Demo.keep_up`). The command line is in tools/demo/cli.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import Any

from sqs_decoupling.stacks.config import AppConfig
from tools.demo.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_STEP_FAILED
from tools.demo.flow import Flow, FlowResult
from tools.demo.outcomes import object_keys
from tools.demo.videos import DEFAULT_VIDEOS, sample_objects
from tools.localcloud import moto_compat
from tools.localcloud.cdk import (
    STACKS,
    DeployedStack,
    StepFailed,
    cdk_env,
    check_outputs,
    deployed_stacks,
    run_cdk,
    skipped_resources,
    template_resources,
)
from tools.localcloud.paths import REPO_ROOT
from tools.localcloud.server import ACCOUNT, REGION, client, moto_server
from tools.scaling.template import read_fleet

WORK_DIR = REPO_ROOT / "build" / "demo"
OUTPUT_DIR = REPO_ROOT / "demo-output"


class Interrupted(Exception):
    """Ctrl-C or SIGTERM."""


def _error(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Demo:
    def __init__(self, *, keep: bool = False, videos: int = DEFAULT_VIDEOS) -> None:
        self.keep = keep
        self.videos = videos
        self.step = "start"
        self.started = time.monotonic()
        self.endpoint = ""
        self.deployed = False
        self.log = WORK_DIR / "cdk.log"
        self.assembly = WORK_DIR / "cdk.out"
        self.config = AppConfig.from_cdk_json(REPO_ROOT / "cdk.json")  # the app's own parser: typed and checked

    # -- plumbing ---------------------------------------------------------------------------------------------

    @contextmanager
    def stage(self, name: str, title: str) -> Iterator[None]:
        self.step = name
        started = time.monotonic()
        print(f"\n== {title}", flush=True)
        yield
        print(f"   ({name}: {time.monotonic() - started:.1f} s)", flush=True)

    def say(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def run(self) -> int:
        def interrupt(signum: int, _frame: FrameType | None) -> None:
            raise Interrupted(signal.Signals(signum).name)

        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        code = EXIT_OK
        with ExitStack() as cleanup:
            try:
                with self.stage("moto server", "Starting moto server"):
                    self.endpoint = cleanup.enter_context(moto_server())
                    cleanup.callback(self.say, "moto server stopped")
                    os.environ.update(cdk_env(self.endpoint))  # boto3 in this process (the handler) uses it too
                    self.say(f"listening on {self.endpoint}; moto work-arounds applied:")
                    for fix in moto_compat.APPLIED:
                        self.say(f" - {fix}")
                cleanup.callback(self.destroy)
                self.main()
            except Interrupted as stop:
                _error(f"\n!! interrupted ({stop}) during step '{self.step}': cleaning up")
                code = EXIT_INTERRUPTED
            except StepFailed as error:
                _error(f"\n!! step '{self.step}' failed: {error}")
                code = EXIT_STEP_FAILED
            except Exception as error:
                _error(f"\n!! step '{self.step}' failed: {type(error).__name__}: {error}")
                code = EXIT_STEP_FAILED
            finally:
                # Cleanup must finish even if Ctrl-C is pressed again.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elapsed = time.monotonic() - self.started
        if code == EXIT_OK:
            print(f"\nDemo finished in {elapsed:.1f} s", flush=True)
        else:
            _error(f"\nDemo FAILED in {elapsed:.1f} s")
        return code

    def destroy(self) -> None:
        if not self.deployed:
            return
        self.step = "destroy"
        print("\n== cdk destroy --all", flush=True)
        try:
            run_cdk(
                ["destroy", "--all", "--force", "--app", str(self.assembly)], env=cdk_env(self.endpoint), log=self.log
            )
            left = deployed_stacks(self.endpoint)
            self.say("every stack destroyed" if not left else f"stacks left behind: {sorted(left)}")
        except Exception as error:
            _error(f"!! step 'destroy' failed: {error}")

    # -- the steps --------------------------------------------------------------------------------------------

    def main(self) -> None:
        env = cdk_env(self.endpoint)
        with self.stage("synth", "cdk synth (asset bundling with pip, cdk-nag on)"):
            run_cdk(["synth", "--quiet", "--output", str(self.assembly)], env=env, log=self.log)
            assembly, log = self.assembly.relative_to(REPO_ROOT), self.log.relative_to(REPO_ROOT)
            self.say(f"cloud assembly in {assembly}; CLI log in {log}")
        with self.stage("bootstrap", f"cdk bootstrap aws://{ACCOUNT}/{REGION}"):
            run_cdk(["bootstrap", f"aws://{ACCOUNT}/{REGION}", "--app", str(self.assembly)], env=env, log=self.log)
        with self.stage("deploy", "cdk deploy --all"):
            self.deployed = True  # from here on, destroy whatever got deployed
            run_cdk(
                ["deploy", "--all", "--require-approval", "never", "--app", str(self.assembly)],
                env=env,
                log=self.log,
                on_line=self._deploy_line,
            )
        with self.stage("inspect", "What moto deployed, and what it did not"):
            stacks = self.inspect()
        with self.stage("wire up", "Doing what moto's CloudFormation could not"):
            self.wire_up(stacks)
        pipeline, fleet = stacks["VideoPipelineStack"].outputs, stacks["WorkerFleetStack"].outputs
        with self.stage("videos", "Sample inputs (ffmpeg testsrc)"):
            objects = sample_objects(WORK_DIR / "videos", self.videos)
            for obj in objects:
                self.say(f"{obj.key:<34} {obj.size:>8} bytes  {obj.description}")
        with self.stage("flow", "Upload, then drain both queues with the real handler and the real worker"):
            result = Flow(self.endpoint, self.config, WORK_DIR, self.say).run(pipeline, fleet, objects)
        with self.stage("summary", "Summary"):
            self.summary(result)
            self.download_outputs(pipeline, fleet)
        if self.keep:
            self.keep_up(stacks)

    def keep_up(self, stacks: dict[str, DeployedStack]) -> None:
        """``--keep``: print AWS CLI commands against the moto server, then hold everything up until Ctrl-C.

        The server lives in this process, so the stacks cannot outlive it; Ctrl-C (or SIGTERM) ends the wait and
        the usual clean-up destroys the stacks and stops the server. The consumers have stopped: new uploads wait
        in the queues."""
        self.step = "keep"
        pipeline, fleet = stacks["VideoPipelineStack"].outputs, stacks["WorkerFleetStack"].outputs
        aws = f"aws --endpoint-url {self.endpoint}"
        print("\n== Stacks left up (--keep): look at them with the AWS CLI from another shell", flush=True)
        for command in (
            f"export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={REGION}",
            f"{aws} cloudformation describe-stacks --query 'Stacks[].[StackName,StackStatus]' --output table",
            f"{aws} cloudformation describe-stack-resources --stack-name WorkerFleetStack"
            " --query 'StackResources[].[ResourceType,PhysicalResourceId]' --output table",
            f"{aws} sqs get-queue-attributes --queue-url {fleet['QueueUrl']} --attribute-names All",
            f"{aws} s3 ls s3://{pipeline['ProcessedBucketName']}/ --recursive",
            f"{aws} s3 cp ./my-clip.mp4 s3://{pipeline['UploadsBucketName']}/{self.config.upload_prefix}"
            "my-clip.mp4  # stays in the queue: the consumers have stopped",
        ):
            self.say(command)
        self.say("Press Ctrl-C to destroy the stacks and stop the server.")
        try:
            while True:
                time.sleep(3600)
        except Interrupted as stop:
            print(f"\n   {stop}: destroying the stacks and stopping the server", flush=True)

    def _deploy_line(self, line: str) -> None:
        if any(mark in line for mark in ("✅", "❌", "deploying...", "Deployment time")):
            self.say(line.strip())

    def inspect(self) -> dict[str, DeployedStack]:
        stacks = deployed_stacks(self.endpoint)
        for name, stack in stacks.items():
            in_template = len(template_resources(self.assembly, name))
            self.say(f"{name}: {stack.status}, {len(stack.resources)} of {in_template} resources")
        if set(stacks) != set(STACKS) or any(s.status != "CREATE_COMPLETE" for s in stacks.values()):
            raise StepFailed(f"not every stack is CREATE_COMPLETE: { {n: s.status for n, s in stacks.items()} }")
        checks = check_outputs(self.endpoint, stacks)
        bad = [c for c in checks if not c.ok]
        self.say(f"{len(checks) - len(bad)} of {len(checks)} stack outputs resolve to existing resources")
        if bad:
            raise StepFailed(f"outputs that name nothing: {bad}")
        skipped = skipped_resources(self.assembly, stacks)
        by_type: dict[str, list[str]] = {}
        for s in skipped:
            by_type.setdefault(f"{s.resource_type}: {s.why}", []).append(f"{s.stack}/{s.logical_id}")
        self.say(f"moto skipped or could not run {len(skipped)} resources:")
        for what, where in sorted(by_type.items()):
            self.say(f" - {len(where):>2} x {what}")
        return stacks

    def wire_up(self, stacks: dict[str, DeployedStack]) -> None:
        s3, lambda_ = client("s3", self.endpoint), client("lambda", self.endpoint)
        for name, stack in stacks.items():
            template = json.loads((self.assembly / f"{name}.template.json").read_text())
            for logical_id, resource in template["Resources"].items():
                versioning = resource.get("Properties", {}).get("VersioningConfiguration", {}).get("Status")
                if resource["Type"] == "AWS::S3::Bucket" and versioning and logical_id in stack.resources:
                    # moto's CloudFormation ignores VersioningConfiguration; outputs are keyed on object versions.
                    bucket_name = stack.resources[logical_id][1]
                    s3.put_bucket_versioning(Bucket=bucket_name, VersioningConfiguration={"Status": versioning})
                    self.say(f"{name}/{logical_id}: put_bucket_versioning {versioning} (moto ignored the property)")
                if resource["Type"] != "Custom::S3BucketNotifications":
                    continue
                properties = resource["Properties"]
                bucket = _resolve(properties["BucketName"], stack)
                configuration = _resolve(properties["NotificationConfiguration"], stack)
                s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)
                for queue in configuration.get("QueueConfigurations", []):
                    self.say(
                        f"{name}/{logical_id}: put_bucket_notification_configuration on {bucket}: "
                        f"{','.join(queue['Events'])} {_filter_text(queue)} -> {queue['QueueArn'].rsplit(':', 1)[-1]}"
                    )
            for logical_id, (resource_type, physical_id) in stack.resources.items():
                if resource_type == "AWS::Lambda::EventSourceMapping":
                    # moto would try to invoke the function (in Docker) on every SendMessage; the local poller
                    # plays the mapping's part instead.
                    lambda_.update_event_source_mapping(UUID=physical_id, Enabled=False)
                    self.say(f"{name}/{logical_id}: disabled in moto; the local event-source poller replaces it")

    def summary(self, result: FlowResult) -> None:
        paths = result.paths
        rows: list[tuple[str, ...]] = [
            (
                "jobs submitted (uploads + re-submitted)",
                *(f"{r.submitted} ({r.submitted - r.resubmitted} + {r.resubmitted})" for r in paths),
            ),
            ("processed (complete output sets)", *(str(r.processed) for r in paths)),
            ("permanent failures (failure records)", *(str(sum(r.failures.values())) for r in paths)),
            ("in the DLQ", *(str(r.in_dlq) for r in paths)),
            ("left in the queue", *(str(r.left_in_queue) for r in paths)),
            ("duplicates delivered / work repeated", *(f"{r.resubmitted} / {r.repeated}" for r in paths)),
            ("SQS requests by the consumer", *(str(r.sqs_requests) for r in paths)),
            ("objects written under processed/", *(str(r.outputs) for r in paths)),
            ("elapsed (flow)", *(f"{r.seconds:.1f} s" for r in paths)),
        ]
        _print_table(("", *(r.name for r in paths)), rows)
        for r in paths:
            for reason, n in sorted(r.failures.items()):
                self.say(f"{r.name}: permanent failure {reason} x{n}")
        if result.batch_sizes:
            self.say(
                f"Lambda path: {len(result.batch_sizes)} invocations, batch sizes {result.batch_sizes} "
                f"(batch size {self.config.lambda_batch_size})"
            )
        fleet = read_fleet(self.assembly)  # the synthesized policy, evaluated as AWS would (tools.scaling.policy)
        self.say(f"Scaling (make scaling simulates it over time): {fleet.explain_backlog(result.backlog)}")

    def download_outputs(self, pipeline: dict[str, str], fleet: dict[str, str]) -> None:
        s3 = client("s3", self.endpoint)
        count = 0
        for name, bucket in (("pipeline", pipeline["ProcessedBucketName"]), ("fleet", fleet["ProcessedBucketName"])):
            for key in object_keys(s3, bucket, prefix=""):
                target = OUTPUT_DIR / name / key
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(target))
                count += 1
        self.say(
            f"{count} output objects copied to {OUTPUT_DIR.relative_to(REPO_ROOT)}/ (moto's copy goes with the server)"
        )


def _resolve(value: Any, stack: DeployedStack) -> Any:
    """Resolve Ref / Fn::GetAtt(Arn) of a queue or bucket in a template fragment to the deployed values."""
    if isinstance(value, list):
        return [_resolve(v, stack) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return stack.resources[value["Ref"]][1]
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        resource_type, physical_id = stack.resources[logical_id]
        if resource_type == "AWS::SQS::Queue" and attribute == "Arn":
            name = physical_id.rstrip("/").rsplit("/", 1)[-1]
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        raise StepFailed(f"cannot resolve {value} ({resource_type})")
    return {k: _resolve(v, stack) for k, v in value.items()}


def _filter_text(queue: dict[str, Any]) -> str:
    rules = queue.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    return " ".join(f"{r['Name']}={r['Value']}" for r in rules)


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    rule = "+".join("-" * (w + 2) for w in widths)
    print(f"   +{rule}+")
    for i, row in enumerate([header, *rows]):
        print("   | " + " | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)) + " |")
        if i == 0:
            print(f"   +{rule}+")
    print(f"   +{rule}+")
