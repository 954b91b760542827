"""What CloudFormation and the services check before any call, in an account that has never run this project.

- **Principals exist.** KMS ``CreateKey``/``PutKeyPolicy`` rejects a key policy naming a principal that does not
  exist (``MalformedPolicyDocumentException``). In a new account, the principals that exist are the account root,
  other accounts' roots, and the roles the deployment itself creates. A service-linked role
  (``role/aws-service-role/...``) exists only once the service has made it (Auto Scaling's with the account's first
  group), so a key policy must not name one; it can name it in a condition (``aws:PrincipalArn``) instead.
- **Concurrency to spare.** ``PutFunctionConcurrency`` (``ReservedConcurrentExecutions``) fails unless the account
  keeps at least 100 unreserved executions; a new account's quota may be 10, so a default deployment reserves none.
"""

from __future__ import annotations

from collections.abc import Iterator

from tests.support.permissions.cfn import Deployment


def key_policy_principals_that_may_not_exist(deployment: Deployment) -> Iterator[str]:
    """Each AWS principal a key policy names that a new account may not have, as ``stack/key: arn``."""
    roles = {
        str(stack.get_att(role_id, "Arn"))
        for stack in deployment.stacks.values()
        for role_id in stack.of_type("AWS::IAM::Role")
    }
    for stack in deployment.stacks.values():
        for key_id in stack.of_type("AWS::KMS::Key"):
            for statement in stack.properties(key_id)["KeyPolicy"]["Statement"]:
                principal = statement.get("Principal", {})
                if principal == "*" or not isinstance(principal, dict):
                    continue
                entries = principal.get("AWS", [])
                for arn in entries if isinstance(entries, list) else [entries]:
                    if arn == "*" or arn.endswith(":root") or arn.isdigit() or arn in roles:
                        continue
                    yield f"{stack.name}/{key_id} ({statement.get('Sid', 'no Sid')}): {arn}"


def reserved_concurrency(deployment: Deployment) -> dict[str, int]:
    """Each function that reserves concurrency, with the number reserved."""
    return {
        f"{stack.name}/{function_id}": int(stack.properties(function_id)["ReservedConcurrentExecutions"])
        for stack in deployment.stacks.values()
        for function_id, function in stack.of_type("AWS::Lambda::Function").items()
        if "ReservedConcurrentExecutions" in function["Properties"]
    }
