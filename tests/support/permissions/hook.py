"""The botocore seam both recorders use: every API call a client makes, with the parameters that name resources.

Standard library only: the subprocess recorder (``site/sitecustomize.py``) loads this file by its path into
interpreters that have nothing of the project on their path (the user data test's installed worker runs under
/usr/bin/python3.11 with the worker's own vendored botocore).

``install(on_call)`` wraps ``botocore.client.BaseClient._make_api_call``, the one method every client operation
goes through (paginators, s3transfer's threads, the Encryption SDK's own KMS clients and botocore's Stubber
included), now if botocore.client is imported, else as soon as it is. ``on_call(service, operation, params)`` runs
before the request is sent: a call AWS would refuse is still a call the role must be allowed to make.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

OnCall = Callable[[str, str, dict[str, str]], None]

# Top-level string parameters that carry data, not resource names: never recorded.
DATA_PARAMS = frozenset({"MessageBody", "ReceiptHandle", "Body", "ContentMD5", "Plaintext", "CiphertextBlob"})
# Generated values: whether a call carried one matters (s3:GetObjectVersion, conditional writes), the value does not.
OPAQUE_PARAMS = {
    "VersionId": "<version_id>",
    "IfMatch": "<etag>",
    "Range": "<range>",
    "ContinuationToken": "<token>",
    "NextToken": "<token>",
}
# Dictionary parameters flattened as ``Name.key``: KMS key policies condition on kms:EncryptionContext:<key>.
FLATTENED_PARAMS = frozenset({"EncryptionContext"})
# The Encryption SDK's per-message signing key in the encryption context: generated.
OPAQUE_CONTEXT_KEYS = {"aws-crypto-public-key": "<public_key>"}

_ORIGINAL = "_permission_recorder_original"


def resource_params(api_params: Mapping[str, Any]) -> dict[str, str]:
    """The parameters worth recording: every top-level string but data (bodies, receipt handles), generated values
    replaced by a placeholder, lists of ids (``InstanceIds``) joined with commas, the encryption context flattened."""
    recorded: dict[str, str] = {}
    for name, value in api_params.items():
        if name in DATA_PARAMS:
            continue
        if isinstance(value, str):
            recorded[name] = OPAQUE_PARAMS.get(name, value)
        elif name.endswith("Ids") and _strings(value):
            recorded[name] = ",".join(value)
        elif name in FLATTENED_PARAMS and isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and isinstance(item, str):
                    recorded[f"{name}.{key}"] = OPAQUE_CONTEXT_KEYS.get(key, item)
    return recorded


def _strings(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, str) for v in value)


def install(on_call: OnCall) -> None:
    """Send every botocore API call of this process to ``on_call`` until :func:`uninstall`."""
    client_module = sys.modules.get("botocore.client")
    if client_module is not None:
        _patch(client_module, on_call)
    else:
        sys.meta_path.insert(0, _PatchOnImport(on_call))


def uninstall() -> None:
    """Undo :func:`install` (also a pending patch-on-import)."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _PatchOnImport)]
    client_module = sys.modules.get("botocore.client")
    if client_module is not None:
        base = client_module.BaseClient
        original = getattr(base._make_api_call, _ORIGINAL, None)
        if original is not None:
            base._make_api_call = original


def _patch(client_module: ModuleType, on_call: OnCall) -> None:
    base = client_module.BaseClient
    if hasattr(base._make_api_call, _ORIGINAL):
        raise RuntimeError("botocore API calls are already being recorded in this process")
    original = base._make_api_call

    @functools.wraps(original)
    def make_api_call(self: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
        on_call(self.meta.service_model.service_name, operation_name, resource_params(api_params))
        return original(self, operation_name, api_params)

    setattr(make_api_call, _ORIGINAL, original)
    base._make_api_call = make_api_call


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches botocore.client right after it is first executed (sitecustomize runs before the program's path is
    complete, so botocore may not even be importable yet, and importing it eagerly would slow every interpreter)."""

    def __init__(self, on_call: OnCall) -> None:
        self._on_call = on_call

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname != "botocore.client":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader, on_call = spec.loader, self._on_call
        load = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            _patch(module, on_call)

        loader.exec_module = exec_module  # type: ignore[method-assign]  # this spec's own loader instance
        sys.meta_path[:] = [finder for finder in sys.meta_path if finder is not self]
        return spec
