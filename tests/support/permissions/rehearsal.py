"""Every AWS call of a deployment, as the authorization requests AWS would evaluate, with the policies that decide.

Who calls what:
- **The runtime** (the worker on EC2, the Lambda handler, the producer CLI): every entry of ``calls.CATALOGUE``,
  which the moto-server runs keep complete (a call no entry covers fails them). Each entry is mapped to its IAM
  actions and ARNs by ``_runtime_requests``; a KMS key behind an SQS queue or an S3 bucket adds the ``kms:`` request
  the service makes with the caller's credentials (``kms:ViaService``, the encryption context it sends).
- **AWS on the runtime's behalf**, as documented: Lambda's event source mapping polls with the function's role and
  writes its logs; the SSM agent and the CloudWatch agent on each instance, and the instance's user data, call with
  the instance role.
- **Service principals**, as documented: S3 sends notifications to the queue (and SQS asks KMS for a data key),
  CloudWatch publishes alarms to their topic (and SNS asks KMS), SNS moves undeliverable e-mails to their dead-letter
  queue, CloudWatch Logs encrypts with the logs key, Auto Scaling's service-linked role publishes the group's
  notifications.
- **SecureQueueStack's roles** (assumed by the principals their trust names, then calling) and a **cross-account
  producer** (its own account's IAM assumed to allow it).
- **A redrive operator** per stack: a role of the stack's account with only the stack's redrive operator policy
  attached, making the ``operator`` calls of the catalogue (sqs-redrive) on the stack's queue and dead-letter queue.

The request context carries the keys AWS documents for each path, and only those: e.g. S3's data-key request to KMS
carries the encryption context ``aws:sqs:arn`` that SQS sends, but no ``aws:SourceArn``. A worker's call in the
isolated network goes through its service's VPC endpoint (``aws:SourceVpce``, ``aws:SourceVpc``) and that endpoint's
policy takes part; a call for which the network has no endpoint has no route (``Check.no_route``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.permissions.calls import CATALOGUE, CatalogueEntry
from tests.support.permissions.cfn import PARTITION, Deployment, Stack
from tests.support.permissions.evaluation import ContextValue, Outcome, Policies, Policy, Principal, Request, evaluate

AUTO_SCALING_SERVICE_ROLE = "role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
# The part of the AWS-managed AutoScalingServiceRolePolicy that matters here (it allows sns:Publish on any topic).
AUTO_SCALING_SERVICE_ROLE_POLICY: Policy = {
    "Statement": [{"Effect": "Allow", "Action": ["sns:Publish"], "Resource": "*"}]
}
CROSS_ACCOUNT_ROLE_NAME = "role/producer"
# The other account's administrator grants its producer what the README tells them to.
CROSS_ACCOUNT_IDENTITY_POLICY: Policy = {
    "Statement": [
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"}
    ]
}
INSTANCE_ID = "i-0123456789abcdef0"
# The role that assumes a role whose trust names only an account (its identity policy allows sts:AssumeRole).
ASSUMING_ROLE_NAME = "role/video-uploader"
OPERATOR_ROLE_NAME = "role/dlq-operator"
# What SQS authorizes for each message move task operation, on the dead-letter queue (the SQS developer guide's
# "Configuring queue permissions for dead-letter queue redrive"): the task moves the messages with the caller's
# permissions, so starting one needs receive and delete on the source too (and send on the destination, below).
MOVE_TASK_ACTIONS = {
    "StartMessageMoveTask": (
        "sqs:StartMessageMoveTask",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ),
    "CancelMessageMoveTask": (
        "sqs:CancelMessageMoveTask",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ),
    "ListMessageMoveTasks": ("sqs:ListMessageMoveTasks", "sqs:GetQueueAttributes"),
}


@dataclass(frozen=True)
class Check:
    """One request and the policies that decide it; ``no_route`` when the network offers no way to make it."""

    stack: str
    caller: str
    what: str
    request: Request
    policies: Policies
    no_route: str | None = None

    def outcome(self) -> Outcome:
        return evaluate(self.request, self.policies)

    def __str__(self) -> str:
        return f"{self.stack}: {self.caller}: {self.what} -> {self.request.action} on {self.request.resource}"


@dataclass
class Actor:
    """A runtime principal of one stack: its role, the resources its settings name, and its network."""

    name: str
    stack: Stack
    role_arn: str
    symbols: dict[str, str]  # "<jobs_queue>" -> a queue URL, bucket name, group name or key ARN
    vpc_id: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)  # service -> endpoint logical id (isolated mode)


class Rehearsal:
    """The checks of one deployment (see the module docstring)."""

    def __init__(self, deployment: Deployment, catalogue: tuple[CatalogueEntry, ...] = CATALOGUE) -> None:
        self.deployment = deployment
        self.catalogue = catalogue
        self._arns: dict[str, tuple[Stack, str]] = {}
        self._operators: dict[str, list[Policy]] = {}  # role ARN -> the policies attached to it (not in a template)
        for stack in deployment.stacks.values():
            for logical_id, resource in stack.resources.items():
                for arn in _arns_of(stack, logical_id, resource["Type"]):
                    self._arns[arn] = (stack, logical_id)

    def from_outside(self, check: Check) -> Check:
        """``check``'s request made with the same credentials from outside the fleet's network (stolen credentials):
        no VPC endpoint, no aws:SourceVpc."""
        context = {k: v for k, v in check.request.context.items() if k not in ("aws:SourceVpc", "aws:SourceVpce")}
        request = Request(check.request.principal, check.request.action, check.request.resource, context)
        policies = Policies(
            identity=check.policies.identity,
            resource=check.policies.resource,
            resource_account=check.policies.resource_account,
            is_key_policy=check.policies.is_key_policy,
        )
        return Check(check.stack, check.caller, f"{check.what}, from outside", request, policies)

    # Index ------------------------------------------------------------------------------------------------------

    def owner(self, arn: str) -> tuple[Stack, str] | None:
        """The stack and logical id of the resource an ARN (an S3 object's too) or queue URL names."""
        if arn in self._arns:
            return self._arns[arn]
        if arn.startswith(f"arn:{PARTITION}:s3:::") and "/" in arn:
            return self._arns.get(arn.split("/", 1)[0])
        return None

    def identity_policies(self, role_arn: str) -> list[Policy]:
        if role_arn in self._operators:
            return self._operators[role_arn]
        found = self.owner(role_arn)
        if found is None:
            return []
        stack, role_id = found
        role_name = stack.ref(role_id)
        policies: list[Policy] = [p["PolicyDocument"] for p in stack.properties(role_id).get("Policies", [])]
        for other in self.deployment.stacks.values():
            for logical_id in {**other.of_type("AWS::IAM::Policy"), **other.of_type("AWS::IAM::ManagedPolicy")}:
                props = other.properties(logical_id)
                if role_name in props.get("Roles", []):
                    policies.append(props["PolicyDocument"])
        return policies

    def resource_policy(self, arn: str) -> tuple[Policy | None, str | None, bool]:
        """(policy, the resource's account, whether it is a key policy) for the resource ``arn`` names."""
        found = self.owner(arn)
        if found is None:
            return None, None, False
        stack, logical_id = found
        resource_type = stack.resources[logical_id]["Type"]
        if resource_type == "AWS::KMS::Key":
            return stack.properties(logical_id)["KeyPolicy"], stack.account, True
        attached = {
            "AWS::SQS::Queue": ("AWS::SQS::QueuePolicy", "Queues"),
            "AWS::SNS::Topic": ("AWS::SNS::TopicPolicy", "Topics"),
            "AWS::S3::Bucket": ("AWS::S3::BucketPolicy", "Bucket"),
        }.get(resource_type)
        if attached is None:
            return None, stack.account, False
        policy_type, target_property = attached
        reference = stack.ref(logical_id)
        statements: list[Any] = []
        for policy_id in stack.of_type(policy_type):
            props = stack.properties(policy_id)
            targets = props[target_property]
            if reference in (targets if isinstance(targets, list) else [targets]):
                statements.extend(props["PolicyDocument"]["Statement"])
        return ({"Statement": statements} if statements else None), stack.account, False

    def key_of(self, arn: str) -> tuple[str | None, bool]:
        """The customer-managed key that encrypts a queue, topic or bucket (and, for a bucket, whether S3 Bucket
        Keys are on, which makes the bucket's ARN the encryption context instead of the object's)."""
        found = self.owner(arn)
        if found is None:
            return None, False
        stack, logical_id = found
        props = stack.properties(logical_id)
        if "KmsMasterKeyId" in props:
            return props["KmsMasterKeyId"], False
        for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
            default = rule.get("ServerSideEncryptionByDefault", {})
            if default.get("SSEAlgorithm") == "aws:kms" and "KMSMasterKeyID" in default:
                return default["KMSMasterKeyID"], bool(rule.get("BucketKeyEnabled"))
        return None, False

    # Checks -----------------------------------------------------------------------------------------------------

    def checks(self) -> list[Check]:
        found: list[Check] = []
        for actor in self.actors():
            for entry in self.catalogue:
                if entry.principal == actor.name:
                    found.extend(self._runtime(actor, entry))
            found.extend(self._on_behalf_of(actor))
        found.extend(self._service_principals())
        found.extend(self._secure_queue_roles())
        found.extend(self._redrive_operators())
        return found

    def actors(self) -> Iterator[Actor]:
        for stack in self.deployment.stacks.values():
            yield from self._workers(stack)
            yield from self._functions(stack)

    def _workers(self, stack: Stack) -> Iterator[Actor]:
        for group_id in stack.of_type("AWS::AutoScaling::AutoScalingGroup"):
            user_data = self._user_data(stack)
            environment = dict(re.findall(r"^Environment=(\w+)=(.*)$", user_data, re.M))
            role_arn = _role_assumed_by(stack, "ec2.amazonaws.com")
            from sqs_decoupling.contracts import worker as worker_contract

            queue_url = environment[worker_contract.QUEUE_URL_ENV]
            symbols = {
                "<jobs_queue>": queue_url,
                "<processed_bucket>": environment[worker_contract.OUTPUT_BUCKET_ENV],
                "<uploads_bucket>": self._bucket_notifying(stack, queue_url),
                "uploads/": self._upload_prefix(stack, queue_url),
                "<worker_group>": stack.ref(group_id),
                "<group_arn>": stack.group_arn(group_id),
                "<lifecycle_hook>": environment.get(worker_contract.LIFECYCLE_HOOK_ENV, ""),
            }
            if worker_contract.BODY_KEY_ARN_ENV in environment:
                symbols["<body_key>"] = environment[worker_contract.BODY_KEY_ARN_ENV]
            if worker_contract.LAUNCH_HOOK_ENV in environment:  # a warm pool's launch hook
                symbols["<launch_hook>"] = environment[worker_contract.LAUNCH_HOOK_ENV]
            vpcs = list(stack.of_type("AWS::EC2::VPC"))
            endpoints = {
                stack.properties(e)["ServiceName"].rsplit(".", 1)[1]: e for e in stack.of_type("AWS::EC2::VPCEndpoint")
            }
            yield Actor("worker", stack, role_arn, symbols, stack.ref(vpcs[0]) if vpcs else None, endpoints)

    def _functions(self, stack: Stack) -> Iterator[Actor]:
        from sqs_decoupling.contracts import lambda_function as lambda_settings  # the handler's settings contract

        for function_id, function in stack.of_type("AWS::Lambda::Function").items():
            if not str(function["Properties"].get("Handler", "")).startswith("sqs_decoupling.lambda_consumer.runtime"):
                continue
            props = stack.properties(function_id)
            environment = props["Environment"]["Variables"]
            mapping = next(
                stack.properties(m)
                for m in stack.of_type("AWS::Lambda::EventSourceMapping")
                if stack.properties(m)["FunctionName"] == stack.ref(function_id)
            )
            queue_url = self._queue_url(mapping["EventSourceArn"])
            symbols = {
                "<jobs_queue>": queue_url,
                "<processed_bucket>": environment[lambda_settings.OUTPUT_BUCKET_ENV],
                "<uploads_bucket>": self._bucket_notifying(stack, queue_url),
                "uploads/": self._upload_prefix(stack, queue_url),
                "<function>": props.get("FunctionName", stack.ref(function_id)),
                "<log_group>": props["LoggingConfig"]["LogGroup"],
                "<tracing>": props.get("TracingConfig", {}).get("Mode", ""),
            }
            if lambda_settings.BODY_KEY_ARN_ENV in environment:
                symbols["<body_key>"] = environment[lambda_settings.BODY_KEY_ARN_ENV]
            yield Actor("lambda", stack, props["Role"], symbols)

    def _user_data(self, stack: Stack) -> str:
        for template_id in stack.of_type("AWS::EC2::LaunchTemplate"):
            data = stack.properties(template_id)["LaunchTemplateData"].get("UserData")
            if data:
                return str(data)
        return ""

    def _queue_url(self, queue_arn: str) -> str:
        stack, logical_id = self._require(queue_arn)
        return stack.ref(logical_id)

    def _queue_arn(self, queue_url: str) -> str:
        stack, logical_id = self._require(queue_url)
        return str(stack.get_att(logical_id, "Arn"))

    def _require(self, arn: str) -> tuple[Stack, str]:
        found = self.owner(arn)
        if found is None:
            raise LookupError(f"no resource of the deployment is {arn!r}")
        return found

    def _bucket_notifying(self, stack: Stack, queue_url: str) -> str:
        return self._notification(stack, queue_url)[0]

    def _upload_prefix(self, stack: Stack, queue_url: str) -> str:
        return self._notification(stack, queue_url)[1]

    def _notification(self, stack: Stack, queue_url: str) -> tuple[str, str]:
        """The bucket that notifies the queue, and the key prefix of its notifications."""
        queue_arn = self._queue_arn(queue_url)
        for notifications_id in stack.of_type("Custom::S3BucketNotifications"):
            props = stack.properties(notifications_id)
            for target in props["NotificationConfiguration"].get("QueueConfigurations", []):
                if target["QueueArn"] == queue_arn:
                    rules = target.get("Filter", {}).get("Key", {}).get("FilterRules", [])
                    prefix = next((r["Value"] for r in rules if r["Name"].lower() == "prefix"), "")
                    return str(props["BucketName"]), prefix
        raise LookupError(f"{stack.name}: no bucket notifies {queue_arn}")

    # The runtime's calls -----------------------------------------------------------------------------------------

    def _runtime(self, actor: Actor, entry: CatalogueEntry) -> Iterator[Check]:
        params = {name: _example(actor.symbols, value) for name, value in entry.params.items()}
        if any(
            re.search(r"<(body_key|body_key_alias|jobs_queue|uploads_bucket|processed_bucket|launch_hook)>", v)
            for v in params.values()
        ):
            # A resource this configuration does not have (no body key without client-side encryption, no launch
            # hook without a warm pool).
            return
        what = f"{entry.service}.{entry.operation}"
        for action, resource, extra in _iam_requests(self, actor, entry.service, entry.operation, params):
            yield from self._as(actor, what, action, resource, extra)

    def _as(
        self, actor: Actor, what: str, action: str, resource: str, extra: Mapping[str, ContextValue] | None = None
    ) -> Iterator[Check]:
        """The check of ``actor`` calling ``action`` on ``resource`` directly, and the KMS request the service
        makes on its behalf where the resource is encrypted with a customer-managed key."""
        service = action.split(":")[0]
        principal = Principal.role(actor.role_arn)
        context: dict[str, ContextValue] = {"aws:ViaAWSService": False, **(extra or {})}
        endpoint_policy: Policy | None = None
        no_route = None
        account = actor.stack.account
        if actor.name == "worker":
            context["ec2:SourceInstanceARN"] = (
                f"arn:{PARTITION}:ec2:{actor.stack.region}:{account}:instance/{INSTANCE_ID}"
            )
            if actor.vpc_id is not None:
                context["aws:ec2InstanceSourceVPC"] = actor.vpc_id
            if actor.endpoints:
                endpoint_id = actor.endpoints.get(service)
                if endpoint_id is None:
                    no_route = f"the isolated network has no VPC endpoint for {service}"
                else:
                    endpoint_policy = actor.stack.properties(endpoint_id).get("PolicyDocument")
                    context["aws:SourceVpce"] = actor.stack.ref(endpoint_id)
                    context["aws:SourceVpc"] = actor.vpc_id or ""
        resource_policy, resource_account, is_key = self.resource_policy(resource)
        if resource_account is not None:
            context["aws:ResourceAccount"] = resource_account
        policies = Policies(
            identity=self.identity_policies(actor.role_arn),
            resource=resource_policy,
            resource_account=resource_account or account,
            is_key_policy=is_key,
            endpoint=endpoint_policy,
        )
        yield Check(
            actor.stack.name, actor.name, what, Request(principal, action, resource, context), policies, no_route
        )
        yield from self._kms_behind(actor.stack, actor.name, what, principal, action, resource)

    def _kms_behind(
        self,
        stack: Stack,
        caller: str,
        what: str,
        principal: Principal,
        action: str,
        resource: str,
        carried: Mapping[str, ContextValue] | None = None,
    ) -> Iterator[Check]:
        """SQS, SNS and S3 ask KMS with the caller's credentials, or as the calling service principal with the keys
        AWS documents for that path (``carried``)."""
        key_arn, bucket_key = self.key_of(resource)
        if key_arn is None:
            return
        service = action.split(":")[0]
        kms_actions = {
            "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
            "sqs:ReceiveMessage": ("kms:Decrypt",),
            "s3:PutObject": ("kms:GenerateDataKey", "kms:Decrypt"),  # Decrypt: multipart uploads
            "s3:GetObject": ("kms:Decrypt",),
            "s3:GetObjectVersion": ("kms:Decrypt",),
            "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
        }.get(action, ())
        if service == "s3":
            context_key, context_value = "aws:s3:arn", resource.split("/", 1)[0] if bucket_key else resource
        elif service == "sqs":
            context_key, context_value = "aws:sqs:arn", resource
        else:
            context_key, context_value = "aws:sns:topicArn", resource
        for kms_action in kms_actions:
            context: dict[str, ContextValue] = {
                f"kms:EncryptionContext:{context_key}": context_value,
                **(carried or {}),
            }
            if not principal.is_service:
                context |= {
                    "kms:ViaService": f"{service}.{stack.region}.amazonaws.com",
                    "kms:CallerAccount": principal.account or "",
                    "aws:ViaAWSService": True,
                }
            key_policy, key_account, _ = self.resource_policy(key_arn)
            identity = [] if principal.is_service else self._identity_for(principal)
            yield Check(
                stack.name,
                caller,
                f"{what} (through {service})",
                Request(principal, kms_action, key_arn, context),
                Policies(identity=identity, resource=key_policy, resource_account=key_account, is_key_policy=True),
            )

    def _identity_for(self, principal: Principal) -> list[Policy]:
        assert principal.arn is not None
        if principal.arn.endswith(AUTO_SCALING_SERVICE_ROLE):
            return [AUTO_SCALING_SERVICE_ROLE_POLICY]
        if principal.arn.endswith(CROSS_ACCOUNT_ROLE_NAME):
            return [CROSS_ACCOUNT_IDENTITY_POLICY]
        return self.identity_policies(principal.arn)

    def _on_behalf_of(self, actor: Actor) -> Iterator[Check]:
        stack, region, account = actor.stack, actor.stack.region, actor.stack.account
        if actor.name == "lambda":
            queue_arn = self._queue_arn(actor.symbols["<jobs_queue>"])
            for action in (
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes",
            ):
                yield from self._as(actor, "the event source mapping polls", action, queue_arn)
            stream = f"arn:{PARTITION}:logs:{region}:{account}:log-group:{actor.symbols['<log_group>']}:log-stream:x"
            for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
                yield from self._as(actor, "Lambda writes the function's logs", action, stream)
            if actor.symbols["<tracing>"] == "Active":
                for action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords"):
                    yield from self._as(actor, "active tracing", action, "*")
        if actor.name == "worker":
            instance = f"arn:{PARTITION}:ec2:{region}:{account}:instance/{INSTANCE_ID}"
            yield from self._as(actor, "the SSM agent", "ssm:UpdateInstanceInformation", instance)
            for channel in ("CreateControlChannel", "CreateDataChannel", "OpenControlChannel", "OpenDataChannel"):
                yield from self._as(actor, "the SSM agent (Session Manager)", f"ssmmessages:{channel}", "*")
            log_group = next(
                stack.properties(g)["LogGroupName"]
                for g in stack.of_type("AWS::Logs::LogGroup")
                if "LogGroupName" in stack.resources[g]["Properties"]
                and stack.properties(g)["LogGroupName"] in self._user_data(stack)
            )
            stream = f"arn:{PARTITION}:logs:{region}:{account}:log-group:{log_group}:log-stream:{INSTANCE_ID}"
            for action in ("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"):
                yield from self._as(actor, "the CloudWatch agent", action, stream)
            for bucket, key in re.findall(r"s3://([^/\s']+)/([^\s']+)", self._user_data(stack)):
                yield from self._as(
                    actor, "user data downloads the worker", "s3:GetObject", f"arn:{PARTITION}:s3:::{bucket}/{key}"
                )

    # Service principals ------------------------------------------------------------------------------------------

    def _service_principals(self) -> Iterator[Check]:
        for stack in self.deployment.stacks.values():
            yield from self._s3_notifications(stack)
            yield from self._alarm_actions(stack)
            yield from self._email_dead_letters(stack)
            yield from self._encrypted_log_groups(stack)
            yield from self._group_notifications(stack)

    def _service(
        self,
        stack: Stack,
        caller: str,
        what: str,
        action: str,
        resource: str,
        context: dict[str, ContextValue],
        carried_to_kms: tuple[str, ...] = (),
    ) -> Iterator[Check]:
        """A service principal's call, and its KMS request carrying the context keys ``carried_to_kms``."""
        principal = Principal.aws_service(caller)
        policy, account, is_key = self.resource_policy(resource)
        request = Request(principal, action, resource, context)
        yield Check(
            stack.name, caller, what, request, Policies(resource=policy, resource_account=account, is_key_policy=is_key)
        )
        carried = {k: v for k, v in context.items() if k in carried_to_kms}
        yield from self._kms_behind(stack, caller, what, principal, action, resource, carried)

    def _s3_notifications(self, stack: Stack) -> Iterator[Check]:
        for notifications_id in stack.of_type("Custom::S3BucketNotifications"):
            props = stack.properties(notifications_id)
            bucket_arn = f"arn:{PARTITION}:s3:::{props['BucketName']}"
            for target in props["NotificationConfiguration"].get("QueueConfigurations", []):
                context: dict[str, ContextValue] = {"aws:SourceArn": bucket_arn, "aws:SourceAccount": stack.account}
                yield from self._service(
                    stack,
                    "s3.amazonaws.com",
                    "an upload's notification",
                    "sqs:SendMessage",
                    target["QueueArn"],
                    context,
                )

    def _alarm_actions(self, stack: Stack) -> Iterator[Check]:
        for alarm_id in stack.of_type("AWS::CloudWatch::Alarm"):
            props = stack.properties(alarm_id)
            alarm_arn = str(stack.get_att(alarm_id, "Arn"))
            for action in props.get("AlarmActions", []) + props.get("OKActions", []):
                if str(action).startswith(f"arn:{PARTITION}:sns:"):
                    context: dict[str, ContextValue] = {"aws:SourceArn": alarm_arn, "aws:SourceAccount": stack.account}
                    yield from self._service(
                        stack,
                        "cloudwatch.amazonaws.com",
                        f"alarm {alarm_id}",
                        "sns:Publish",
                        action,
                        context,
                        # SNS's documented key policy for CloudWatch scopes it with these (SNS developer guide).
                        carried_to_kms=("aws:SourceArn", "aws:SourceAccount"),
                    )

    def _email_dead_letters(self, stack: Stack) -> Iterator[Check]:
        for subscription_id in stack.of_type("AWS::SNS::Subscription"):
            props = stack.properties(subscription_id)
            target = props.get("RedrivePolicy", {}).get("deadLetterTargetArn")
            if target:
                context: dict[str, ContextValue] = {
                    "aws:SourceArn": props["TopicArn"],
                    "aws:SourceAccount": stack.account,
                }
                yield from self._service(
                    stack, "sns.amazonaws.com", "an undeliverable e-mail", "sqs:SendMessage", target, context
                )

    def _encrypted_log_groups(self, stack: Stack) -> Iterator[Check]:
        for group_id in stack.of_type("AWS::Logs::LogGroup"):
            props = stack.properties(group_id)
            if "KmsKeyId" not in props:
                continue
            group_arn = str(stack.get_att(group_id, "Arn")).removesuffix(":*")
            for action in ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"):
                context: dict[str, ContextValue] = {"kms:EncryptionContext:aws:logs:arn": group_arn}
                principal = Principal.aws_service(f"logs.{stack.region}.amazonaws.com")
                policy, account, _ = self.resource_policy(props["KmsKeyId"])
                yield Check(
                    stack.name,
                    principal.service or "",
                    f"log group {group_id}",
                    Request(principal, action, props["KmsKeyId"], context),
                    Policies(resource=policy, resource_account=account, is_key_policy=True),
                )

    def _group_notifications(self, stack: Stack) -> Iterator[Check]:
        role_arn = f"arn:{PARTITION}:iam::{stack.account}:{AUTO_SCALING_SERVICE_ROLE}"
        principal = Principal.role(role_arn)
        for group_id in stack.of_type("AWS::AutoScaling::AutoScalingGroup"):
            for notification in stack.properties(group_id).get("NotificationConfigurations", []):
                topic = notification["TopicARN"]
                policy, account, _ = self.resource_policy(topic)
                what = "the group's notifications"
                request = Request(principal, "sns:Publish", topic, {"aws:ViaAWSService": False})
                yield Check(
                    stack.name,
                    "AWSServiceRoleForAutoScaling",
                    what,
                    request,
                    Policies(identity=[AUTO_SCALING_SERVICE_ROLE_POLICY], resource=policy, resource_account=account),
                )
                yield from self._kms_behind(
                    stack, "AWSServiceRoleForAutoScaling", what, principal, "sns:Publish", topic
                )

    def _producer_calls(self, stack: Stack, actor: Actor, queue_arn: str) -> Iterator[Check]:
        """The producer CLI's queue and key calls, made as SecureQueueStack's producer role. (Its S3 calls, for jobs
        about objects already in a bucket, are made with whatever identity runs it on that bucket.)"""
        actor.symbols["<jobs_queue>"] = self._queue_url(queue_arn)
        body_keys = [
            k
            for k, key in stack.of_type("AWS::KMS::Key").items()
            if "Client-side" in str(key["Properties"].get("Description", ""))
        ]
        if body_keys:
            actor.symbols["<body_key>"] = str(stack.get_att(body_keys[0], "Arn"))
            actor.symbols["<body_key_alias>"] = str(stack.get_att(body_keys[0], "Arn"))
        for entry in self.catalogue:
            if entry.principal == "producer" and entry.service in ("sqs", "kms"):
                if entry.service == "kms" and not body_keys:
                    continue
                yield from self._runtime(actor, entry)

    # SecureQueueStack ---------------------------------------------------------------------------------------------

    def assume_role_checks(self, stack: Stack, role_id: str, caller_arn: str | None = None) -> Iterator[Check]:
        """``sts:AssumeRole`` on a role by each principal its trust policy names (for a trusted account, a role of
        that account), each with an identity policy allowing it; or by ``caller_arn`` alone."""
        role_arn = str(stack.get_att(role_id, "Arn"))
        trust = stack.properties(role_id)["AssumeRolePolicyDocument"]
        callers = [caller_arn] if caller_arn else []
        for statement in [] if caller_arn else trust.get("Statement", []):
            for arn in _principal_arns(statement):
                callers.append(f"{arn.rsplit(':', 1)[0]}:{ASSUMING_ROLE_NAME}" if arn.endswith(":root") else arn)
        for arn in callers:
            identity: Policy = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]}
            context: dict[str, ContextValue] = {"aws:ResourceAccount": stack.account}
            yield Check(
                stack.name,
                arn,
                f"sts.AssumeRole {role_id}",
                Request(Principal.role(arn), "sts:AssumeRole", role_arn, context),
                Policies(identity=[identity], resource=trust, resource_account=stack.account, is_trust_policy=True),
            )

    def _secure_queue_roles(self) -> Iterator[Check]:
        for stack in self.deployment.stacks.values():
            for role_id, role in stack.of_type("AWS::IAM::Role").items():
                description = str(role["Properties"].get("Description", ""))
                if not description.startswith("May only"):
                    continue
                role_arn = str(stack.get_att(role_id, "Arn"))
                actor = Actor(role_id, stack, role_arn, {})
                queue_arn = next(
                    str(stack.get_att(q, "Arn"))
                    for q, queue in stack.of_type("AWS::SQS::Queue").items()
                    if "RedrivePolicy" in queue["Properties"]
                )
                actions = (
                    ("sqs:SendMessage",)
                    if "send" in description
                    else ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility")
                )
                for action in actions:
                    yield from self._as(actor, description, action, queue_arn)
                yield from self.assume_role_checks(stack, role_id)
                if "send" in description:
                    yield from self._producer_calls(stack, actor, queue_arn)
            for queue_arn in [
                a for a in self._arns if a.startswith(f"arn:{PARTITION}:sqs:") and self._arns[a][0] is stack
            ]:
                policy, _, _ = self.resource_policy(queue_arn)
                for statement in (policy or {}).get("Statement", []):
                    if statement.get("Sid") != "AllowCrossAccountProducersToSendOnly":
                        continue
                    for entry in _principal_arns(statement):
                        account = entry.split(":")[4]
                        principal = Principal.role(f"arn:{PARTITION}:iam::{account}:{CROSS_ACCOUNT_ROLE_NAME}")
                        context: dict[str, ContextValue] = {"aws:ResourceAccount": stack.account}
                        request = Request(principal, "sqs:SendMessage", queue_arn, context)
                        yield Check(
                            stack.name,
                            f"a producer of {account}",
                            "sqs.SendMessage",
                            request,
                            Policies(
                                identity=[CROSS_ACCOUNT_IDENTITY_POLICY],
                                resource=policy,
                                resource_account=stack.account,
                            ),
                        )
                        yield from self._kms_behind(
                            stack,
                            f"a producer of {account}",
                            "sqs.SendMessage",
                            principal,
                            "sqs:SendMessage",
                            queue_arn,
                        )

    # Redrive operators ---------------------------------------------------------------------------------------------

    def _redrive_operators(self) -> Iterator[Check]:
        """Per stack: a role with only the stack's redrive operator policy makes the catalogue's ``operator`` calls
        on the queue pair the stack's redrive policy (the queue's, not the IAM policy's) names."""
        from sqs_decoupling.queue.encrypted_queue import REDRIVE_DESCRIPTION_PREFIX

        for stack in self.deployment.stacks.values():
            policies = [
                stack.properties(p)["PolicyDocument"]
                for p, policy in stack.of_type("AWS::IAM::ManagedPolicy").items()
                if str(policy["Properties"].get("Description", "")).startswith(REDRIVE_DESCRIPTION_PREFIX)
            ]
            pairs = [
                (stack.ref(q), str(stack.properties(q)["RedrivePolicy"]["deadLetterTargetArn"]))
                for q, queue in stack.of_type("AWS::SQS::Queue").items()
                if "RedrivePolicy" in queue["Properties"]
            ]
            if not pairs:
                continue
            if len(policies) != 1 or len(pairs) != 1:
                raise LookupError(f"{stack.name}: {len(policies)} redrive policies for {len(pairs)} queue pairs")
            (queue_url, dead_letter_arn) = pairs[0]
            role_arn = f"arn:{PARTITION}:iam::{stack.account}:{OPERATOR_ROLE_NAME}"
            self._operators[role_arn] = policies
            symbols = {"<jobs_queue>": queue_url, "<dead_letter_queue>": self._queue_url(dead_letter_arn)}
            actor = Actor("operator", stack, role_arn, symbols)
            for entry in self.catalogue:
                if entry.principal == "operator":
                    yield from self._runtime(actor, entry)


def _principal_arns(statement: Mapping[str, Any]) -> list[str]:
    value = statement.get("Principal", {})
    entries = value.get("AWS", []) if isinstance(value, dict) else []
    return [e for e in (entries if isinstance(entries, list) else [entries]) if e.startswith("arn:")]


def _role_assumed_by(stack: Stack, service: str) -> str:
    for role_id in stack.of_type("AWS::IAM::Role"):
        trust = stack.properties(role_id)["AssumeRolePolicyDocument"]["Statement"]
        if any(s.get("Principal", {}).get("Service") == service for s in trust):
            return str(stack.get_att(role_id, "Arn"))
    raise LookupError(f"{stack.name}: no role is assumed by {service}")


def _arns_of(stack: Stack, logical_id: str, resource_type: str) -> list[str]:
    """The identifiers a policy or setting may use for a resource: ARNs, and a queue's URL."""
    if resource_type == "AWS::SQS::Queue":
        return [str(stack.get_att(logical_id, "Arn")), stack.ref(logical_id)]
    attribute = {
        "AWS::S3::Bucket": "Arn",
        "AWS::KMS::Key": "Arn",
        "AWS::SNS::Topic": "TopicArn",
        "AWS::IAM::Role": "Arn",
        "AWS::Logs::LogGroup": "Arn",
        "AWS::Lambda::Function": "Arn",
    }.get(resource_type)
    return [str(stack.get_att(logical_id, attribute))] if attribute else []


def _example(symbols: Mapping[str, str], pattern: str) -> str:
    """A concrete parameter value for a catalogue pattern: symbols replaced, each ``*`` by an example text."""
    value = pattern
    for symbol, concrete in symbols.items():
        value = value.replace(symbol, concrete)
    return value.replace("*", "example")


def _iam_requests(
    rehearsal: Rehearsal, actor: Actor, service: str, operation: str, params: Mapping[str, str]
) -> list[tuple[str, str, dict[str, ContextValue]]]:
    """The IAM actions, resource ARNs and context keys AWS authorizes for one API call (the service authorization
    reference's "Actions" tables). An operation missing here raises: map it when the runtime starts calling it."""
    region, account = actor.stack.region, actor.stack.account
    if service == "sqs" and operation in MOVE_TASK_ACTIONS:
        source_arn = rehearsal._queue_arn(params.get("SourceArn") or actor.symbols["<dead_letter_queue>"])
        requests: list[tuple[str, str, dict[str, ContextValue]]] = [
            (action, source_arn, {}) for action in MOVE_TASK_ACTIONS[operation]
        ]
        if "DestinationArn" in params:
            requests.append(("sqs:SendMessage", rehearsal._queue_arn(params["DestinationArn"]), {}))
        return requests
    if service == "sqs":
        queue_arn = rehearsal._queue_arn(params["QueueUrl"])
        action = {
            "ReceiveMessage": "sqs:ReceiveMessage",
            "DeleteMessage": "sqs:DeleteMessage",
            "DeleteMessageBatch": "sqs:DeleteMessage",
            "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
            "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
            "GetQueueAttributes": "sqs:GetQueueAttributes",
            "SendMessage": "sqs:SendMessage",
            "SendMessageBatch": "sqs:SendMessage",
            "ListDeadLetterSourceQueues": "sqs:ListDeadLetterSourceQueues",
        }[operation]
        return [(action, queue_arn, {})]
    if service == "s3":
        bucket_arn = f"arn:{PARTITION}:s3:::{params['Bucket']}"
        object_arn = f"{bucket_arn}/{params.get('Key', '')}"
        if operation in ("GetObject", "HeadObject"):
            versioned = "VersionId" in params
            return [("s3:GetObjectVersion" if versioned else "s3:GetObject", object_arn, {})]
        if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            return [("s3:PutObject", object_arn, {})]
        if operation in ("ListObjectsV2", "ListObjects", "HeadBucket"):
            return [("s3:ListBucket", bucket_arn, {"s3:prefix": params.get("Prefix", "")})]
        if operation == "DeleteObject":
            return [("s3:DeleteObject", object_arn, {})]
        if operation == "AbortMultipartUpload":
            return [("s3:AbortMultipartUpload", object_arn, {})]
    if service == "kms" and operation in ("Decrypt", "GenerateDataKey", "Encrypt", "DescribeKey"):
        key = params.get("KeyId", actor.symbols.get("<body_key>", ""))
        context: dict[str, ContextValue] = {
            # the queue's name, where the recording named the queue (the producer puts its name in the context)
            f"kms:EncryptionContext:{k.removeprefix('EncryptionContext.')}": v.rsplit("/", 1)[-1]
            for k, v in params.items()
            if k.startswith("EncryptionContext.")
        }
        return [(f"kms:{operation}", key, context | {"kms:CallerAccount": account})]
    if service == "autoscaling":
        if operation.startswith("Describe"):
            return [(f"autoscaling:{operation}", "*", {})]
        return [(f"autoscaling:{operation}", actor.symbols["<group_arn>"], {})]
    if service == "cloudwatch" and operation == "GetMetricData":
        return [("cloudwatch:GetMetricData", "*", {})]
    if service == "cloudwatch" and operation == "PutMetricData":
        return [("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": params.get("Namespace", "")})]
    if service == "sts" and operation == "GetCallerIdentity":
        return []  # needs no permission
    raise LookupError(
        f"{service}.{operation} ({region}) has no IAM mapping: add it to rehearsal._iam_requests with its actions "
        "and resource ARNs from the service authorization reference"
    )
