"""``python -m demo`` (``make demo``): deploy every stack into moto server with the real CDK CLI, push real videos
through the real Lambda handler and the real worker, print what happened, destroy, stop.

Steps: moto server -> synth -> bootstrap -> deploy -> inspect (what moto skipped) -> wire up (what moto could not
do) -> videos -> upload -> flow -> summary -> destroy -> stop. Whatever happens (a failure, Ctrl-C), the stacks are
destroyed and the server is stopped, and the step that failed is named. With ``--keep``, the stacks stay up after the
summary until Ctrl-C (see :meth:`Demo.keep_up`). The command line is in demo/cli.py.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from demo import moto_compat
from demo.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_STEP_FAILED
from demo.cloud import (
    ACCOUNT,
    REGION,
    REPO_ROOT,
    DeployedStack,
    StepFailed,
    cdk_env,
    check_outputs,
    client,
    deployed_stacks,
    moto_server,
    run_cdk,
    skipped_resources,
    template_resources,
)
from demo.lambda_local import HandlerLogTap, load_handler
from demo.poller import EventSourcePoller
from demo.videos import DEFAULT_VIDEOS, SampleObject, sample_objects
from demo.worker_process import WorkerProcess
from scaling.template import Fleet, read_fleet

WORK_DIR = REPO_ROOT / "build" / "demo"
OUTPUT_DIR = REPO_ROOT / "demo-output"
FLOW_TIMEOUT_SECONDS = 300


class Interrupted(Exception):
    """Ctrl-C or SIGTERM."""


def _error(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class PathResult:
    """One consumer path's numbers for the summary."""

    name: str
    submitted: int = 0
    resubmitted: int = 0
    processed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    in_dlq: int = 0
    left_in_queue: int = 0
    duplicates_suppressed: int = 0
    sqs_requests: int = 0
    outputs: int = 0
    seconds: float = 0.0


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
        self.config = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]

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
            results, scaling = self.flow(pipeline, fleet, objects)
        with self.stage("summary", "Summary"):
            self.summary(results, scaling)
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
            f"{aws} s3 cp ./my-clip.mp4 s3://{pipeline['UploadsBucketName']}/{self.config['upload_prefix']}"
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
        if set(stacks) != {"SecureQueueStack", "VideoPipelineStack", "WorkerFleetStack"} or any(
            s.status != "CREATE_COMPLETE" for s in stacks.values()
        ):
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

    def flow(
        self, pipeline: dict[str, str], fleet: dict[str, str], objects: list[SampleObject]
    ) -> tuple[list[PathResult], tuple[int, Fleet]]:
        s3, sqs = client("s3", self.endpoint), client("sqs", self.endpoint)
        prefix = self.config["upload_prefix"]
        results = {"lambda": PathResult("Lambda (video pipeline)"), "fleet": PathResult("EC2 worker fleet")}
        uploads = {"lambda": pipeline["UploadsBucketName"], "fleet": fleet["UploadsBucketName"]}
        for path, bucket in uploads.items():
            for obj in objects:
                s3.put_object(Bucket=bucket, Key=prefix + obj.key, Body=obj.data)
                results[path].submitted += 1
        # At-least-once made visible: a producer re-submits jobs for videos S3 already announced (sqs-submit).
        from producer.submit import jobs_from_s3_uris, submit_jobs

        videos = [o for o in objects if o.valid]
        for path, outputs, count in (("lambda", pipeline, 1), ("fleet", fleet, 2)):
            uris = [f"s3://{uploads[path]}/{prefix}{o.key}" for o in videos[:count]]
            report = submit_jobs(sqs, outputs["QueueUrl"], jobs_from_s3_uris(s3, uris))
            results[path].resubmitted = len(report.sent)
            results[path].submitted += len(report.sent)
        self.say(
            f"uploaded {len(objects)} objects to each uploads bucket; re-submitted {results['lambda'].resubmitted} "
            f"+ {results['fleet'].resubmitted} of them with the producer (duplicates on purpose)"
        )
        # The backlog a CloudWatch alarm would see before any consumer runs.
        time.sleep(1)
        backlog = _depth(sqs, fleet["QueueUrl"])[0]
        scaling = read_fleet(self.assembly)  # the synthesized policy, evaluated as AWS would (scaling.policy)

        tap = HandlerLogTap(WORK_DIR / "lambda-handler.log")
        handler = load_handler(
            output_bucket=pipeline["ProcessedBucketName"],
            max_video_bytes=int(self.config["max_video_mb"]) * 1024 * 1024,
            tap=tap,
        )
        poller = EventSourcePoller(
            client("sqs", self.endpoint),
            pipeline["QueueUrl"],
            handler,
            batch_size=int(self.config["lambda_batch_size"]),
        )
        stop = threading.Event()
        poller_thread = threading.Thread(target=poller.run, args=(stop,), name="event-source-poller", daemon=True)
        worker = WorkerProcess(
            queue_url=fleet["QueueUrl"],
            output_bucket=fleet["ProcessedBucketName"],
            env=cdk_env(self.endpoint),
            log_path=WORK_DIR / "worker.log",
            concurrency=int(self.config["worker_concurrency"]),
        )
        started = time.monotonic()
        poller_thread.start()
        expected = {
            path: results[path].submitted for path in results
        }  # every upload and re-submission ends as processed, duplicate or permanent failure
        try:
            deadline = started + FLOW_TIMEOUT_SECONDS
            interactive = sys.stdout.isatty()
            last_print = 0.0
            while True:
                lam, wrk = tap.outcomes, worker.counts()
                done_lambda = sum(lam.values())
                done_fleet = sum(wrk[k] for k in ("done", "duplicate", "permanent_failure"))
                depth_l, depth_f = _depth(sqs, pipeline["QueueUrl"]), _depth(sqs, fleet["QueueUrl"])
                # (S3's s3:TestEvent is counted as "ignored" by both consumers, not as a finished job.)
                finished = done_lambda >= expected["lambda"] and done_fleet >= expected["fleet"]
                line = (
                    f"t={time.monotonic() - started:5.1f}s | lambda queue {depth_l[0]:>2} visible {depth_l[1]:>2}"
                    f" in flight | done {done_lambda}/{expected['lambda']}"
                    f" | fleet queue {depth_f[0]:>2} visible {depth_f[1]:>2}"
                    f" in flight | done {min(done_fleet, expected['fleet'])}/{expected['fleet']}"
                )
                now = time.monotonic()
                if interactive:
                    print("\r   " + line, end="", flush=True)
                elif now - last_print >= 2 or finished:
                    self.say(line)
                    last_print = now
                if finished and sum(depth_l) == 0 and sum(depth_f) == 0:
                    break
                if worker.process.poll() is not None:
                    raise StepFailed(
                        f"the worker exited early with code {worker.process.returncode}; see {worker.log_path}"
                    )
                if now > deadline:
                    raise StepFailed(f"the flow did not finish in {FLOW_TIMEOUT_SECONDS} s: {line}")
                time.sleep(0.5)
            if interactive:
                print(flush=True)
        finally:
            stop.set()
            poller_thread.join(timeout=30)
            code = worker.stop()
            tap.close()
        elapsed = time.monotonic() - started
        self.say(f"worker stopped with SIGTERM (drained), exit code {code}")

        for path, outputs in (("lambda", pipeline), ("fleet", fleet)):
            result = results[path]
            result.seconds = elapsed
            processed = _keys(s3, outputs["ProcessedBucketName"], "processed/")
            result.processed = sum(1 for k in processed if k.endswith("/manifest.json"))
            # Failure records and the per-key latest-outcome pointers share processed/ with the outputs.
            records = [k for k in processed if k.endswith("/failure.json")]
            result.outputs = sum(1 for k in processed if not k.endswith(("/failure.json", ".latest.json")))
            for key in records:
                record = json.loads(s3.get_object(Bucket=outputs["ProcessedBucketName"], Key=key)["Body"].read())
                result.failures[f"{record['reason']} ({record['source']['key'].removeprefix(prefix)})"] += 1
            result.in_dlq = sum(_depth(sqs, outputs["DeadLetterQueueUrl"]))
            result.left_in_queue = sum(_depth(sqs, outputs["QueueUrl"]))
        results["lambda"].duplicates_suppressed = tap.outcomes["duplicate"]
        results["lambda"].sqs_requests = sum(poller.stats.requests.values())
        results["fleet"].duplicates_suppressed = worker.counts()["duplicate"]
        final = worker.final or {}
        results["fleet"].sqs_requests = sum(n for op, n in final.get("requests", {}).items() if op.startswith("sqs."))
        self._poller_batches = poller.stats.batch_sizes
        return list(results.values()), (backlog, scaling)

    def summary(self, results: list[PathResult], scaling: tuple[int, Fleet]) -> None:
        rows: list[tuple[str, ...]] = [
            (
                "jobs submitted (uploads + re-submitted)",
                *(f"{r.submitted} ({r.submitted - r.resubmitted} + {r.resubmitted})" for r in results),
            ),
            ("processed (complete output sets)", *(str(r.processed) for r in results)),
            ("permanent failures (failure records)", *(str(sum(r.failures.values())) for r in results)),
            ("in the DLQ", *(str(r.in_dlq) for r in results)),
            ("left in the queue", *(str(r.left_in_queue) for r in results)),
            ("duplicates delivered / suppressed", *(f"{r.resubmitted} / {r.duplicates_suppressed}" for r in results)),
            ("SQS requests by the consumer", *(str(r.sqs_requests) for r in results)),
            ("objects written under processed/", *(str(r.outputs) for r in results)),
            ("elapsed (flow)", *(f"{r.seconds:.1f} s" for r in results)),
        ]
        header = ("", *(r.name for r in results))
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        rule = "+".join("-" * (w + 2) for w in widths)
        print(f"   +{rule}+")
        for i, row in enumerate([header, *rows]):
            print("   | " + " | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)) + " |")
            if i == 0:
                print(f"   +{rule}+")
        print(f"   +{rule}+")
        for r in results:
            for reason, n in sorted(r.failures.items()):
                self.say(f"{r.name}: permanent failure {reason} x{n}")
        if self._poller_batches:
            self.say(
                f"Lambda path: {len(self._poller_batches)} invocations, batch sizes {self._poller_batches} "
                f"(batch size {self.config['lambda_batch_size']})"
            )
        backlog, fleet = scaling
        self.say(f"Scaling (make scaling simulates it over time): {fleet.explain_backlog(backlog)}")

    def download_outputs(self, pipeline: dict[str, str], fleet: dict[str, str]) -> None:
        s3 = client("s3", self.endpoint)
        count = 0
        for name, bucket in (("pipeline", pipeline["ProcessedBucketName"]), ("fleet", fleet["ProcessedBucketName"])):
            for key in _keys(s3, bucket, ""):
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


def _depth(sqs: Any, queue_url: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return keys
