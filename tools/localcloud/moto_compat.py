"""Work-arounds for moto bugs that stop the project's real templates from deploying into moto server, or make moto
behave unlike AWS where the consumers can tell (S3 events without ``versionId``, keys over 1,024 bytes).

Each one is a narrow patch of moto, applied in the process that runs the ThreadedMotoServer while
:func:`tools.localcloud.server.moto_server` runs (the demo, the tests, the benchmarks). The CloudFormation ones change
how moto *parses* a template, never the templates the CDK app synthesizes: what gets deployed is exactly what
`cdk synth` wrote. :data:`APPLIED` lists what was patched, so the demo can say so.

They reach into moto's internals, so each patch names what it reaches (:data:`PATCH_TARGETS`: a module attribute
and the leading parameters the patch relies on). :func:`apply` checks every one first and, if moto moved or renamed
one, refuses with :class:`MotoPatchError` naming the patch, instead of failing later in a confusing way or silently
doing nothing. :data:`TESTED_WITH` lists the moto releases the patches were checked against (the deploy rehearsal,
the demo and the tests pass with each); pyproject.toml pins one of them. Taking a new moto: raise the pin, run
`make lock` and `make test`; when a patch no longer applies, tests/unit/localcloud/test_moto_compat.py names it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

TESTED_WITH: Final = ("5.2.5", "5.2.6")
"""The moto releases every patch below was checked against; pyproject.toml pins one of them."""
APPLIED: list[str] = []
_ORIGINALS: list[tuple[Any, str, Any]] = []
_MISSING = object()
_applied_from = 0
"""How many patches were in place before :func:`apply` made its own: :func:`revert` undoes only those after it."""


@dataclass(frozen=True)
class Target:
    """What a patch reaches into: ``module:attribute.path``, and the leading parameters it relies on (by name)."""

    path: str
    parameters: tuple[str, ...] = ()

    def problem(self) -> str | None:
        """Why the patch cannot rely on this target in the installed moto (None: it can)."""
        module_name, _, attributes = self.path.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError:
            return f"module {module_name} is gone"
        for attribute in attributes.split("."):
            if not hasattr(found, attribute):
                return f"{module_name}.{attributes} is gone"
            found = getattr(found, attribute)
        if self.parameters:
            actual = tuple(inspect.signature(found).parameters)[: len(self.parameters)]
            if actual != self.parameters:
                expected = ", ".join(self.parameters)
                return f"{module_name}.{attributes} takes ({', '.join(actual)}), the patch expects ({expected})"
        return None


class MotoPatchError(RuntimeError):
    """A work-around no longer fits the installed moto: what it patches moved, or changed its parameters."""


def moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def apply() -> list[str]:
    """Apply every work-around once (idempotent); return their descriptions. ``revert()`` undoes them.

    Raises :class:`MotoPatchError` (and applies none) if any patch no longer fits the installed moto; warns if that
    moto is not one of :data:`TESTED_WITH` but every patch still finds what it patches.
    """
    global _applied_from
    check_patches()
    if not APPLIED:
        _applied_from = len(_ORIGINALS)
        for patch in PATCH_TARGETS:
            patch()
    return list(APPLIED)


def check_patches(installed: str | None = None) -> None:
    """Raise :class:`MotoPatchError` naming every patch whose targets the installed moto no longer has."""
    installed = installed or moto_version()
    broken = [
        f"{patch.__name__} ({problem})"
        for patch, targets in PATCH_TARGETS.items()
        for problem in filter(None, (target.problem() for target in targets))
    ]
    if broken:
        raise MotoPatchError(
            f"tools/localcloud/moto_compat.py: {len(broken)} patch(es) no longer apply to moto {installed} "
            "(tested with "
            f"{', '.join(TESTED_WITH)}): {'; '.join(broken)}. Re-check each against the new moto (is the bug "
            "still there? where did the code move?), or `make setup` to go back to the pinned moto"
        )
    if installed not in TESTED_WITH:
        warnings.warn(
            f"moto {installed} is not among the releases tools/localcloud/moto_compat.py was tested with "
            f"({', '.join(TESTED_WITH)}); every patch still finds what it patches: run `make test`, then add it to "
            "TESTED_WITH",
            stacklevel=2,
        )


def revert() -> None:
    """Put moto back as it was before :func:`apply`, so code that runs later in this process (other tests) sees
    stock moto; an enclosing :func:`s3_key_length_enforced` block keeps its patch."""
    _restore_down_to(_applied_from if APPLIED else len(_ORIGINALS))
    APPLIED.clear()


def _restore_down_to(mark: int) -> None:
    while len(_ORIGINALS) > mark:
        owner, name, original = _ORIGINALS.pop()
        if original is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, original)


@contextmanager
def _only(work_around: Callable[..., None]) -> Iterator[None]:
    """One work-around within the block, not counted as applied, and undone at its end (whatever else is applied)."""
    mark = len(_ORIGINALS)
    work_around(record=False)
    try:
        yield
    finally:
        _restore_down_to(mark)


@contextmanager
def s3_key_length_enforced() -> Iterator[None]:
    """Within the block, moto refuses S3 keys over 1,024 bytes as S3 does (for code that otherwise runs stock
    moto). Independent of ``apply()``: it does not count as applied, and a ``revert()`` inside the block leaves it.
    """
    with _only(_s3_key_length):
        yield


@contextmanager
def s3_events_with_version_ids() -> Iterator[None]:
    """Within the block, S3 event notifications carry ``versionId`` as S3's do, and nothing else is patched: for code
    that needs only that of :func:`apply` (whose checks import moto's CloudFormation, EC2 and KMS models, about 1.2 s
    of CPU a process). Independent of ``apply()``, as :func:`s3_key_length_enforced` is."""
    with _only(_s3_event_version_id):
        yield


def _patch(owner: Any, name: str, value: Any) -> None:
    """Replace ``owner.name`` (a class or module attribute), remembering the original for ``revert()``."""
    _ORIGINALS.append((owner, name, vars(owner).get(name, _MISSING)))
    setattr(owner, name, value)


def _kms_key_tags() -> None:
    """moto: AWS::KMS::Key with ``Tags`` fails the whole change set with ``KeyError: 'TagKey'``, and a key
    whose ``KeyPolicy`` came from a template keeps it as a dict, so every later KMS call on the key (DescribeKey,
    Encrypt...) fails with a 500: ``TypeError: the JSON object must be str ... not dict``.

    CloudFormation writes tags as ``{"Key", "Value"}``; moto's KMS backend expects the KMS API's
    ``{"TagKey", "TagValue"}``. The CDK app tags every resource (``Tags.of(app).add("project", ...)``), so every
    stack with a key hit it, and moto still reported CREATE_COMPLETE for a stack with no resources in it.
    """
    from moto.kms.models import Key

    # The function under moto's classmethod, so the patch can call it with the class it is called on.
    original: Callable[..., Key] = vars(Key)["create_from_cloudformation_json"].__func__

    def create_from_cloudformation_json(
        cls: type[Key],
        /,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Key:
        properties = cloudformation_json.get("Properties", {})
        if isinstance(properties.get("KeyPolicy"), dict):
            properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
        tags = properties.get("Tags")
        if tags:
            properties["Tags"] = [
                {"TagKey": tag["Key"], "TagValue": tag.get("Value", "")} if "Key" in tag else tag for tag in tags
            ]
        return original(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    _patch(Key, "create_from_cloudformation_json", classmethod(create_from_cloudformation_json))
    APPLIED.append(
        "AWS::KMS::Key: Tags as Key/Value (moto wants TagKey/TagValue: KeyError) and KeyPolicy kept as a dict "
        "(every later KMS call on the key: HTTP 500)"
    )


def _flow_log_s3_prefix() -> None:
    """moto: a flow log to S3 whose destination ARN has a folder (``arn:aws:s3:::bucket/prefix/``, which AWS
    accepts) fails with ``IndexError: list index out of range``: moto looks the whole ``bucket/prefix/`` up as the
    bucket name, reports it missing and then indexes the empty result. Look the bucket up by its name alone."""
    from moto.ec2.models.flow_logs import FlowLogsBackend

    original = FlowLogsBackend.create_flow_logs

    @functools.wraps(original)
    def create_flow_logs(self: FlowLogsBackend, *args: Any) -> Any:
        arguments = list(args)
        destination_type, destination = arguments[4], arguments[5]
        if destination_type == "s3" and destination and "/" in destination.split(":", 5)[-1]:
            arguments[5] = destination.split("/", 1)[0]
            flow_logs, unsuccessful = original(self, *arguments)
            for flow_log in flow_logs:
                flow_log.log_destination = destination
            return flow_logs, unsuccessful
        return original(self, *arguments)

    _patch(FlowLogsBackend, "create_flow_logs", create_flow_logs)
    APPLIED.append(
        "AWS::EC2::FlowLog to s3://bucket/prefix/: moto looks up 'bucket/prefix/' as the bucket (IndexError)"
    )


def _change_set_outputs() -> None:
    """moto: a stack created through a change set (what ``cdk deploy`` does) has no Outputs: moto makes the
    stack with an empty template, and executing the change set creates the resources but never re-reads the
    template's Outputs section. Re-read it after the change set has been executed."""
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.execute_change_set

    @functools.wraps(original)
    def execute_change_set(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
        original(self, change_set_name, stack_name)
        for stack in self.stacks.values():
            if (
                stack.name == stack_name
                or stack.stack_id == stack_name
                or _has_change_set(self, stack, change_set_name)
            ):
                stack._parse_template()
                stack.output_map = stack._create_output_map()

    _patch(CloudFormationBackend, "execute_change_set", execute_change_set)
    APPLIED.append("change-set stacks: moto never reads the template's Outputs after ExecuteChangeSet (no outputs)")


def _has_change_set(backend: Any, stack: Any, change_set_name: str) -> bool:
    change_set = backend.change_sets.get(change_set_name)
    if change_set is None:
        change_set = next((cs for cs in backend.change_sets.values() if cs.change_set_name == change_set_name), None)
    return change_set is not None and change_set.stack_id == stack.stack_id


def _ec2_network_deletes() -> None:
    """moto: AWS::EC2::RouteTable, SubnetRouteTableAssociation, VPCEndpoint and FlowLog have no CloudFormation
    delete, so DeleteStack leaves them behind and then fails on the VPC: "The vpc vpc-... has dependencies and
    cannot be deleted." Give them the deletes AWS performs (moto's delete loop retries until dependencies are gone).
    """
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.flow_logs import FlowLogs
    from moto.ec2.models.route_tables import RouteTable
    from moto.ec2.models.subnets import SubnetRouteTableAssociation
    from moto.ec2.models.vpcs import VPCEndPoint

    def delete_route_table(self: RouteTable, account_id: str, region_name: str) -> None:
        backend = ec2_backends[account_id][region_name]
        if self.id in backend.route_tables:  # the VPC's deletion may have taken it already
            backend.delete_route_table(self.id)

    def delete_association(self: SubnetRouteTableAssociation, account_id: str, region_name: str) -> None:
        backend = ec2_backends[account_id][region_name]
        route_table = backend.route_tables.get(self.route_table_id)
        if route_table is not None:
            for association_id, subnet_id in list(route_table._associations.items()):
                if subnet_id == self.subnet_id:
                    backend.disassociate_route_table(association_id)

    def delete_endpoint(self: VPCEndPoint, account_id: str, region_name: str) -> None:
        backend = ec2_backends[account_id][region_name]
        # A gateway endpoint removes its routes; route tables deleted before it have none left to remove.
        self.route_table_ids = [rt for rt in (self.route_table_ids or []) if rt in backend.route_tables]
        backend.delete_vpc_endpoints([self.id])
        backend.vpc_end_points.pop(self.id, None)

    def delete_flow_log(self: FlowLogs, account_id: str, region_name: str) -> None:
        ec2_backends[account_id][region_name].delete_flow_logs([self.id])

    _patch(RouteTable, "delete", delete_route_table)
    _patch(SubnetRouteTableAssociation, "delete", delete_association)
    _patch(VPCEndPoint, "delete", delete_endpoint)
    _patch(FlowLogs, "delete", delete_flow_log)
    APPLIED.append(
        "DeleteStack: moto cannot delete AWS::EC2::RouteTable/SubnetRouteTableAssociation/VPCEndpoint/FlowLog, "
        "then fails on the VPC ('has dependencies')"
    )


def _s3_event_version_id(*, record: bool = True) -> None:
    """moto: S3 event notifications carry no ``versionId``, even for a versioned bucket (real S3 includes it).
    Consumers key their outputs on the version (else the ETag), so without it an S3 event and a producer's message
    for the same object version name different output prefixes. Add it as S3 does."""
    from moto.s3 import notifications

    original = notifications._get_s3_event

    @functools.wraps(original)
    def get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, list[dict[str, Any]]]:
        event = original(event_name, bucket, key, notification_id)
        version_id = getattr(key, "version_id", None)
        if getattr(bucket, "is_versioned", False) and version_id and version_id != "null":
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = version_id
        return event

    _patch(notifications, "_get_s3_event", get_s3_event)
    if record:
        APPLIED.append("S3 event notifications: moto omits versionId for versioned buckets (real S3 sends it)")


def _custom_resource_docker_probe() -> None:
    """moto: for every custom resource (CDK's bucket notifications, the default security group clean-up) moto
    works out the URL a Lambda container would call back on. Because this machine has ``/.dockerenv``, moto asks the
    Docker socket with ``curl`` which is not there, and ``print``s "WARNING - Unable to parse Docker API response"
    and a ``JSONDecodeError`` line into the middle of the deploy output. No container ever runs here (no Docker), so
    answer with moto's own no-Docker default instead of probing."""
    from moto import settings

    def moto_server_host() -> str:
        return "http://host.docker.internal"

    _patch(settings, "moto_server_host", moto_server_host)
    APPLIED.append(
        "custom resources: moto probes the Docker socket for a callback URL and prints 'Unable to parse Docker API "
        "response' mid-deploy (no Docker here; its no-Docker default is used)"
    )


@contextmanager
def kms_private_keys_when_used() -> Iterator[None]:
    """Within the block, moto makes a KMS key's private key when it is first used, not when the key is created: for
    code that otherwise runs stock moto. Independent of ``apply()``, as :func:`s3_key_length_enforced` is."""
    with _only(_kms_private_key_when_used):
        yield


class _PrivateKeyWhenUsed:
    """Stands in for moto's private key of a KMS key and makes it at its first use (sign, verify, public key)."""

    def __init__(self, make: Callable[[str], Any], key_spec: str) -> None:
        self._make, self._key_spec, self._key = make, key_spec, None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._key is None:
                self._key = self._make(self._key_spec)
        return getattr(self._key, name)


def _kms_private_key_when_used(*, record: bool = True) -> None:
    """moto makes an RSA-2048 private key for every KMS key it creates, a symmetric one too (about 50 ms of CPU
    each), though only asymmetric signing and GetPublicKey use it. Make it at its first use instead: the same
    behaviour, without the cost for the keys that never sign (every key this project creates)."""
    from moto.kms import models, utils

    original = utils.generate_private_key  # what moto.kms.models imported

    def generate_private_key(key_spec: str) -> Any:
        return _PrivateKeyWhenUsed(original, key_spec)

    _patch(models, "generate_private_key", generate_private_key)
    if record:
        APPLIED.append("KMS keys: moto makes an RSA private key for every key, symmetric ones too (made when used)")


_KEY_LENGTH_FIX = "S3 keys over 1,024 bytes: moto accepts them (real S3 answers KeyTooLongError)"


def _s3_key_length(*, record: bool = True) -> None:
    """moto stores keys of any length; S3 refuses keys over 1,024 bytes (UTF-8) with ``KeyTooLongError``.
    Without the check, no local test can see what a near-limit source key does to the output keys."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import S3Backend

    def checked(original: Any, key_argument: int) -> Any:
        @functools.wraps(original)
        def call(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
            key = args[key_argument] if len(args) > key_argument else None
            if isinstance(key, str) and len(key.encode()) > 1024:
                raise S3ClientError("KeyTooLongError", "Your key is too long")
            return original(self, *args, **kwargs)

        return call

    # Positional index of the key name (after self): put_object(bucket, key), copy_object(src, bucket, key).
    _patch(S3Backend, "put_object", checked(S3Backend.put_object, 1))
    _patch(S3Backend, "create_multipart_upload", checked(S3Backend.create_multipart_upload, 1))
    _patch(S3Backend, "copy_object", checked(S3Backend.copy_object, 2))
    if record:
        APPLIED.append(_KEY_LENGTH_FIX)


MOVE_TASK_STEP = 10
"""Messages an emulated move task without a rate moves per ListMessageMoveTasks call."""


@contextmanager
def sqs_message_move_tasks() -> Iterator[None]:
    """Within the block, moto's SQS answers StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask
    (moto 5.2.5 has none: each is a 500 error), for code that otherwise runs stock moto. Not part of :func:`apply`:
    the demo and the other tests see moto as it is, which is why ``sqs-redrive start`` there needs ``--method copy``.

    An emulation of what the SQS API reference documents, not of SQS's timing: a task counts the source's visible
    messages when it starts, and each ListMessageMoveTasks call moves the next ``MaxNumberOfMessagesPerSecond``
    (:data:`MOVE_TASK_STEP` without a rate) of them with the backend's own receive, send and delete, so progress is
    deterministic. One running task per source queue; only a running task has a TaskHandle and can be cancelled.
    """
    import base64
    import uuid

    from moto.core.responses import ActionResult
    from moto.sqs.exceptions import SQSException
    from moto.sqs.responses import SQSResponse

    tasks: dict[str, list[dict[str, Any]]] = {}  # source ARN -> its tasks, newest first

    def queue_name(arn: str) -> str:
        return arn.rsplit(":", 1)[-1]

    def advance(response: SQSResponse, task: dict[str, Any]) -> None:
        backend = response.sqs_backend
        source, destination = queue_name(task["SourceArn"]), queue_name(task["DestinationArn"])
        step = min(task.get("MaxNumberOfMessagesPerSecond") or MOVE_TASK_STEP, task["ToMove"] - task["Moved"])
        if step > 0:
            for message in backend.receive_message(source, step, 0, 30, ["All"]):
                backend.send_message(destination, message.body, message_attributes=message.message_attributes)
                backend.delete_message(source, message.receipt_handle or "")
                task["Moved"] += 1
        if task["Moved"] >= task["ToMove"] or step <= 0:
            task["Status"] = "COMPLETED"

    def result(task: dict[str, Any]) -> dict[str, Any]:
        shown = {
            "Status": task["Status"],
            "SourceArn": task["SourceArn"],
            "DestinationArn": task["DestinationArn"],
            "ApproximateNumberOfMessagesMoved": task["Moved"],
            "ApproximateNumberOfMessagesToMove": task["ToMove"],
            "StartedTimestamp": task["StartedTimestamp"],
        }
        if task.get("MaxNumberOfMessagesPerSecond"):
            shown["MaxNumberOfMessagesPerSecond"] = task["MaxNumberOfMessagesPerSecond"]
        if task["Status"] == "RUNNING":
            shown["TaskHandle"] = task["TaskHandle"]
        return shown

    def start_message_move_task(self: SQSResponse) -> ActionResult:
        source_arn = self._get_param("SourceArn")
        source = self.sqs_backend.get_queue(queue_name(source_arn))  # QueueDoesNotExist as SQS answers
        destination_arn = self._get_param("DestinationArn")
        if not destination_arn:
            origins = self.sqs_backend.list_dead_letter_source_queues(source.name)
            if len(origins) != 1:
                raise SQSException("InvalidParameterValue", "emulation: give DestinationArn for this source")
            destination_arn = origins[0].queue_arn
        self.sqs_backend.get_queue(queue_name(destination_arn))
        if any(t["Status"] == "RUNNING" for t in tasks.get(source_arn, [])):
            raise SQSException("UnsupportedOperation", "A message move task is already running for this queue.")
        handle = base64.b64encode(json.dumps({"taskId": str(uuid.uuid4()), "sourceArn": source_arn}).encode())
        task = {
            "TaskHandle": handle.decode(),
            "Status": "RUNNING",
            "SourceArn": source_arn,
            "DestinationArn": destination_arn,
            "MaxNumberOfMessagesPerSecond": self._get_param("MaxNumberOfMessagesPerSecond"),
            "Moved": 0,
            "ToMove": source.approximate_number_of_messages,
            "StartedTimestamp": len(tasks.get(source_arn, [])) + 1,
        }
        tasks.setdefault(source_arn, []).insert(0, task)
        return ActionResult({"TaskHandle": task["TaskHandle"]})

    def list_message_move_tasks(self: SQSResponse) -> ActionResult:
        found = tasks.get(self._get_param("SourceArn"), [])
        for task in found:
            if task["Status"] == "RUNNING":
                advance(self, task)
        return ActionResult({"Results": [result(t) for t in found[: int(self._get_param("MaxResults") or 1)]]})

    def cancel_message_move_task(self: SQSResponse) -> ActionResult:
        handle = self._get_param("TaskHandle")
        for task in (t for found in tasks.values() for t in found):
            if task["TaskHandle"] == handle and task["Status"] == "RUNNING":
                task["Status"] = "CANCELLED"
                return ActionResult({"ApproximateNumberOfMessagesMoved": task["Moved"]})
        raise SQSException("ResourceNotFoundException", "No running message move task has this handle.")

    mark = len(_ORIGINALS)
    _patch(SQSResponse, "start_message_move_task", start_message_move_task)
    _patch(SQSResponse, "list_message_move_tasks", list_message_move_tasks)
    _patch(SQSResponse, "cancel_message_move_task", cancel_message_move_task)
    try:
        yield
    finally:
        _restore_down_to(mark)


_S3_BACKEND = "moto.s3.models:S3Backend"
PATCH_TARGETS: Final[dict[Callable[[], None], tuple[Target, ...]]] = {
    _kms_key_tags: (
        Target(
            "moto.kms.models:Key.create_from_cloudformation_json",
            ("resource_name", "cloudformation_json", "account_id", "region_name"),
        ),
    ),
    _flow_log_s3_prefix: (
        Target(
            "moto.ec2.models.flow_logs:FlowLogsBackend.create_flow_logs",
            (
                "self",
                "resource_type",
                "resource_ids",
                "traffic_type",
                "deliver_logs_permission_arn",
                "log_destination_type",
                "log_destination",
            ),
        ),
    ),
    _change_set_outputs: (
        Target("moto.cloudformation.models:CloudFormationBackend.execute_change_set", ("self", "change_set_name")),
        Target("moto.cloudformation.models:Stack._parse_template"),
        Target("moto.cloudformation.models:Stack._create_output_map"),
    ),
    _ec2_network_deletes: (
        Target("moto.ec2.models:ec2_backends"),
        Target("moto.ec2.models.route_tables:RouteTable"),
        Target("moto.ec2.models.subnets:SubnetRouteTableAssociation"),
        Target("moto.ec2.models.vpcs:VPCEndPoint"),
        Target("moto.ec2.models.flow_logs:FlowLogs"),
        Target("moto.ec2.models:EC2Backend.delete_route_table"),
        Target("moto.ec2.models:EC2Backend.disassociate_route_table"),
        Target("moto.ec2.models:EC2Backend.delete_vpc_endpoints"),
        Target("moto.ec2.models:EC2Backend.delete_flow_logs"),
    ),
    _s3_event_version_id: (
        Target("moto.s3.notifications:_get_s3_event", ("event_name", "bucket", "key", "notification_id")),
    ),
    _custom_resource_docker_probe: (Target("moto.settings:moto_server_host"),),
    _kms_private_key_when_used: (Target("moto.kms.models:generate_private_key", ("key_spec",)),),
    _s3_key_length: (
        Target("moto.s3.exceptions:S3ClientError"),
        Target(f"{_S3_BACKEND}.put_object", ("self", "bucket_name", "key_name")),
        Target(f"{_S3_BACKEND}.create_multipart_upload", ("self", "bucket_name", "key_name")),
        Target(f"{_S3_BACKEND}.copy_object", ("self", "src_key", "dest_bucket_name", "dest_key_name")),
    ),
}
"""Every work-around, in the order :func:`apply` applies them, with what each reaches into in moto."""
