"""AWS's policy evaluation logic, for the policies this project writes.

Implements the documented logic ("Policy evaluation logic" and "Cross-account policy evaluation logic" in the IAM
User Guide; "Key policies" in the KMS Developer Guide; "Control access to services using endpoint policies" in the
VPC documentation):

1. An explicit ``Deny`` in any policy that applies (identity, resource, key, VPC endpoint) denies.
2. A VPC endpoint policy, where the request goes through an endpoint, must also allow.
3. Within one account, an ``Allow`` in the principal's identity policies *or* in the resource policy naming the
   principal allows; a resource policy that names only the account (``arn:aws:iam::<account>:root``) delegates to
   IAM, so the identity policy must allow. A KMS key is stricter: IAM policies count only where the key policy
   allows the account, and nothing is allowed that the key policy does not allow (to the principal or the account).
4. Across accounts, both the principal's identity policy and the resource policy must allow.
5. A service principal (``s3.amazonaws.com``) has no identity policy: only the resource policy can allow it.

Statements support ``Principal``/``NotPrincipal``, ``Action``/``NotAction``, ``Resource``/``NotResource`` with
``*`` and ``?`` wildcards, policy variables (``${aws:SourceVpc}``), and the condition operators ``String*``,
``Arn*``, ``Bool``, ``Null``, ``Numeric*``, each with ``IfExists`` and the ``ForAnyValue:``/``ForAllValues:`` set
prefixes. A condition key missing from the request matches only ``...IfExists``, ``Null: true``, a negated operator
(``StringNotEquals``, ``ArnNotLike``, ...) and ``ForAllValues:``.

What it does not model (AWS alone knows them): service control and resource control policies, permissions
boundaries, session policies, grants, and the service-side validation of a request.
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Policy = Mapping[str, Any]
ContextValue = str | bool | int | Sequence[str]


class Decision(enum.Enum):
    ALLOW = "allow"
    IMPLICIT_DENY = "implicit deny"
    EXPLICIT_DENY = "explicit deny"


@dataclass(frozen=True)
class Principal:
    """Who calls: an IAM role (``arn`` of the role; its session is the same principal here), an account root, or
    an AWS service (``service`` such as ``s3.amazonaws.com``)."""

    account: str | None = None
    arn: str | None = None
    service: str | None = None

    @classmethod
    def role(cls, arn: str) -> Principal:
        return cls(account=arn.split(":")[4], arn=arn)

    @classmethod
    def aws_service(cls, service: str) -> Principal:
        return cls(service=service)

    @property
    def is_service(self) -> bool:
        return self.service is not None

    def context(self) -> dict[str, ContextValue]:
        """The global condition keys AWS sets from the principal itself."""
        if self.service is not None:
            return {"aws:PrincipalIsAWSService": True, "aws:PrincipalServiceName": self.service}
        assert self.arn is not None and self.account is not None
        return {
            "aws:PrincipalArn": self.arn,
            "aws:PrincipalAccount": self.account,
            "aws:PrincipalIsAWSService": False,
            "aws:PrincipalType": "AssumedRole" if ":role/" in self.arn else "Account",
        }


@dataclass(frozen=True)
class Request:
    """One authorization AWS makes: ``principal`` may ``action`` on ``resource`` given ``context``."""

    principal: Principal
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def full_context(self) -> dict[str, ContextValue]:
        """The request's keys plus those AWS derives from the principal and resource; key names are
        case-insensitive, so they are stored lower-cased."""
        merged: dict[str, ContextValue] = {"aws:SecureTransport": True, **self.principal.context()}
        merged.update(self.context)
        return {k.lower(): v for k, v in merged.items()}


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    reason: str

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


# Statement matching ------------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _wildcard(pattern: str, text: str, *, case_sensitive: bool = True) -> bool:
    """IAM's ``*`` (any run of characters, ``/`` and ``:`` included) and ``?`` (one character)."""
    return _regex(pattern, case_sensitive).fullmatch(text) is not None


@functools.cache  # a rehearsal matches the same patterns of its policies against every request
def _regex(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, 0 if case_sensitive else re.IGNORECASE)


_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class _Unresolvable(Exception):
    """A policy variable names a key the request does not carry."""


def _substitute(text: str, context: Mapping[str, ContextValue]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, _, default = match.group(1).partition(",")
        special = {"*": "*", "?": "?", "$": "$"}
        if name in special:
            return special[name]
        value = context.get(name.strip().lower())
        if value is None:
            if default:
                return default.strip().strip("'")
            raise _Unresolvable(name)
        return str(value).lower() if isinstance(value, bool) else str(value)

    return _VARIABLE.sub(replace, text)


def _matches_any(patterns: Iterable[str], text: str, context: Mapping[str, ContextValue], **kw: bool) -> bool:
    for pattern in patterns:
        try:
            if _wildcard(_substitute(pattern, context), text, **kw):
                return True
        except _Unresolvable:
            continue
    return False


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(_wildcard(p, action, case_sensitive=False) for p in _as_list(statement["Action"]))
    return not any(_wildcard(p, action, case_sensitive=False) for p in _as_list(statement.get("NotAction")))


def _resource_matches(statement: Mapping[str, Any], resource: str, context: Mapping[str, ContextValue]) -> bool:
    if "Resource" in statement:
        return _matches_any(_as_list(statement["Resource"]), resource, context)
    if "NotResource" in statement:
        return not _matches_any(_as_list(statement["NotResource"]), resource, context)
    return True  # a resource policy may leave Resource out: it applies to its own resource


def _principal_entries(value: Any) -> list[tuple[str, str]]:
    if value == "*":
        return [("AWS", "*")]
    return [(kind, entry) for kind, entries in value.items() for entry in _as_list(entries)]


def _principal_matches(value: Any, principal: Principal) -> tuple[bool, bool]:
    """(matches, by_account): whether the Principal element names ``principal``, and whether only through its
    account (``arn:aws:iam::<account>:root`` or a bare account id), which delegates to the account's IAM."""
    for kind, entry in _principal_entries(value):
        if kind == "AWS" and entry == "*":
            return True, False
        if kind == "Service" and principal.service == entry:
            return True, False
        if kind == "AWS" and principal.arn is not None:
            if entry == principal.arn:
                return True, False
            if entry in (principal.account, f"arn:aws:iam::{principal.account}:root"):
                return True, True
    return False, False


# Conditions --------------------------------------------------------------------------------------------------------

_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _compare(operator: str, expected: str, actual: str) -> bool:
    if operator in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
        return expected == actual
    if operator in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
        return expected.lower() == actual.lower()
    if operator in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
        if operator.startswith("Arn") and expected.count(":") >= 5 and actual.count(":") >= 5:
            # ARNs compare part by part: the resource part may itself hold colons.
            expected_parts, actual_parts = expected.split(":", 5), actual.split(":", 5)
            return all(_wildcard(e, a) for e, a in zip(expected_parts, actual_parts, strict=True))
        return _wildcard(expected, actual)
    if operator == "Bool":
        return expected.lower() == actual.lower()
    if operator.startswith("Numeric"):
        e, a = float(expected), float(actual)
        return {
            "NumericEquals": a == e,
            "NumericNotEquals": a != e,
            "NumericLessThan": a < e,
            "NumericLessThanEquals": a <= e,
            "NumericGreaterThan": a > e,
            "NumericGreaterThanEquals": a >= e,
        }[operator]
    raise ValueError(f"condition operator {operator!r} is not modelled: add it to evaluation._compare")


def _condition_holds(operator_text: str, key: str, expected: Any, context: Mapping[str, ContextValue]) -> bool:
    set_prefix, _, operator = operator_text.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    actual = context.get(key.lower())
    expected_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(expected)]
    if operator == "Null":
        return (actual is None) == (expected_values[0].lower() == "true")
    if actual is None:
        if set_prefix == "ForAllValues":
            return True
        if set_prefix == "ForAnyValue":
            return False
        return if_exists or operator in _NEGATED
    actual_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _as_list(actual)]
    negated = operator in _NEGATED

    def one_matches(value: str) -> bool:
        matched = False
        for e in expected_values:
            try:
                if _compare(operator, _substitute(e, context), value):
                    matched = True
                    break
            except _Unresolvable:
                return False  # a variable the request cannot fill: the condition does not hold
        return not matched if negated else matched

    if set_prefix == "ForAllValues":
        return all(one_matches(v) for v in actual_values)
    if set_prefix == "ForAnyValue" or len(actual_values) == 1:
        return any(one_matches(v) for v in actual_values)
    raise ValueError(f"key {key!r} has several values: use ForAnyValue/ForAllValues")


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, ContextValue]) -> bool:
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, keys in conditions.items()
        for key, expected in keys.items()
    )


def statement_applies(
    statement: Mapping[str, Any],
    request: Request,
    *,
    resource_policy: bool,
    context: Mapping[str, ContextValue] | None = None,
) -> tuple[bool, bool]:
    """(applies, by_account) for one statement; ``by_account`` as in ``_principal_matches``."""
    ctx = request.full_context() if context is None else context
    by_account = False
    if resource_policy:
        if "Principal" in statement:
            matched, by_account = _principal_matches(statement["Principal"], request.principal)
            if not matched:
                return False, False
        elif "NotPrincipal" in statement:
            matched, _ = _principal_matches(statement["NotPrincipal"], request.principal)
            if matched:
                return False, False
    if not _action_matches(statement, request.action):
        return False, False
    if not _resource_matches(statement, request.resource, ctx):
        return False, False
    return _conditions_hold(statement.get("Condition", {}), ctx), by_account


# Decisions ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policies:
    """The policies that take part in one request."""

    identity: Sequence[Policy] = ()
    resource: Policy | None = None
    resource_account: str | None = None
    is_key_policy: bool = False
    endpoint: Policy | None = None
    # A role's trust policy for sts:AssumeRole. Like a key policy it is the only way in, within the account too
    # (IAM User Guide, "Policy evaluation for requests within a single account": role trust policies and KMS key
    # policies are the exceptions to "an identity or a resource policy suffices").
    is_trust_policy: bool = False


def _statements(policy: Policy | None) -> list[Mapping[str, Any]]:
    return [] if policy is None else _as_list(policy.get("Statement"))


def _allows(
    policy: Policy | None, request: Request, ctx: Mapping[str, ContextValue], *, resource_policy: bool
) -> tuple[bool, bool]:
    """(allows the principal itself, allows it only through its account)."""
    direct = by_account = False
    for statement in _statements(policy):
        if statement["Effect"] != "Allow":
            continue
        applies, through_account = statement_applies(statement, request, resource_policy=resource_policy, context=ctx)
        if applies:
            by_account |= through_account
            direct |= not through_account
    return direct, by_account


def _denying_sid(
    policy: Policy | None, request: Request, ctx: Mapping[str, ContextValue], *, resource_policy: bool
) -> str | None:
    for index, statement in enumerate(_statements(policy)):
        if statement["Effect"] == "Deny":
            applies, _ = statement_applies(statement, request, resource_policy=resource_policy, context=ctx)
            if applies:
                return str(statement.get("Sid", f"statement {index}"))
    return None


def evaluate(request: Request, policies: Policies) -> Outcome:
    """AWS's decision for ``request`` under ``policies`` (see the module docstring for the steps)."""
    ctx = request.full_context()
    principal = request.principal
    for name, policy, is_resource in (
        ("resource policy", policies.resource, True),
        ("VPC endpoint policy", policies.endpoint, True),
        *(("identity policy", p, False) for p in policies.identity),
    ):
        sid = _denying_sid(policy, request, ctx, resource_policy=is_resource)
        if sid is not None:
            return Outcome(Decision.EXPLICIT_DENY, f"the {name} denies it ({sid})")
    if policies.endpoint is not None and not any(_allows(policies.endpoint, request, ctx, resource_policy=True)):
        return Outcome(Decision.IMPLICIT_DENY, "the VPC endpoint policy allows nothing that matches")

    identity_allows = not principal.is_service and any(
        _allows(p, request, ctx, resource_policy=False)[0] for p in policies.identity
    )
    resource_direct, resource_by_account = _allows(policies.resource, request, ctx, resource_policy=True)
    same_account = principal.account is not None and principal.account == policies.resource_account

    if principal.is_service:
        if resource_direct:
            return Outcome(Decision.ALLOW, "the resource policy allows the service")
        return Outcome(Decision.IMPLICIT_DENY, "no statement of the resource policy allows the service")
    if policies.is_key_policy or policies.is_trust_policy:
        kind = "key policy" if policies.is_key_policy else "role's trust policy"
        if resource_direct and (same_account or identity_allows):
            return Outcome(Decision.ALLOW, f"the {kind} allows the principal")
        if resource_by_account and identity_allows:
            return Outcome(Decision.ALLOW, f"the {kind} delegates to the account and an identity policy allows it")
        if resource_by_account or resource_direct:
            return Outcome(Decision.IMPLICIT_DENY, f"the {kind} allows it, but no identity policy of the caller does")
        return Outcome(Decision.IMPLICIT_DENY, f"the {kind} allows neither the principal nor its account")
    if same_account or policies.resource_account is None:
        if identity_allows or resource_direct:
            return Outcome(Decision.ALLOW, "an identity or resource policy allows it")
        return Outcome(Decision.IMPLICIT_DENY, "no identity or resource policy allows it")
    if not (resource_direct or resource_by_account):
        return Outcome(Decision.IMPLICIT_DENY, "cross-account: the resource policy does not allow the principal")
    if not identity_allows:
        return Outcome(Decision.IMPLICIT_DENY, "cross-account: the principal's identity policy does not allow it")
    return Outcome(Decision.ALLOW, "cross-account: both the identity and the resource policy allow it")


def action_patterns_match(pattern: str, action: str) -> bool:
    """Whether an IAM action pattern (``kms:GenerateDataKey*``) covers ``action``."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())
