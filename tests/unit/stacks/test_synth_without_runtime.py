"""Synthesis needs only the CDK: every stack builds while the runtime's libraries cannot be imported.

The stacks take what they share with the runtime (environment variable names, defaults, limits, metric names,
profiles) from ``sqs_decoupling.contracts``, which imports only the standard library. A user who copies a stack into
an app with only ``aws-cdk-lib`` installed synthesizes it; these tests keep it so.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools.localcloud.paths import REPO_ROOT

RUNTIME_LIBRARIES = ("imageio_ffmpeg", "aws_lambda_powertools", "pydantic", "aws_encryption_sdk", "boto3", "botocore")

# Builds the whole app (assets not bundled, as the other stack tests do) with the runtime libraries refused by a
# meta path finder that comes before every other one.
_SYNTH_WITH_RUNTIME_BLOCKED = textwrap.dedent(
    """
    import importlib.abc, json, sys, tempfile
    from pathlib import Path

    BLOCKED = {blocked!r}

    class RefuseRuntime(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: synthesis must not need it)")
            return None

    sys.meta_path.insert(0, RefuseRuntime())

    from aws_cdk import App
    from sqs_decoupling.stacks.app_builder import build_app

    context = json.loads(Path("cdk.json").read_text())["context"] | {{"aws:cdk:bundling-stacks": []}}
    with tempfile.TemporaryDirectory() as outdir:
        assembly = build_app(App(context=context, outdir=outdir), control_tower_checks=False).synth()
        print(" ".join(sorted(stack.stack_name for stack in assembly.stacks)))
    print(" ".join(sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)))
    """
)


def _synthesize_with(blocked: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    script = _SYNTH_WITH_RUNTIME_BLOCKED.format(blocked=blocked)
    # Without aws-cdk-lib's built-in template validation (the gate's tests run it): what is asked here is whether
    # the stacks build at all.
    environment = os.environ | {"PYTHONPATH": str(REPO_ROOT), "CDK_VALIDATION": "false"}
    return subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_every_stack_synthesizes_with_the_runtime_libraries_blocked() -> None:
    # GIVEN a Python where ffmpeg, Powertools, pydantic, the Encryption SDK, boto3 and botocore cannot be imported
    # WHEN the app with every stack is built and synthesized
    result = _synthesize_with(RUNTIME_LIBRARIES)

    # THEN it succeeds, every stack is in the assembly and no runtime library was loaded
    assert result.returncode == 0, result.stderr[-3000:]
    stacks, loaded = [*result.stdout.splitlines(), ""][:2]
    assert stacks.split() == ["SecureQueueStack", "VideoPipelineStack", "WorkerFleetStack"]
    assert loaded == ""


def test_the_blocking_finder_refuses_what_it_names() -> None:
    # GIVEN the same blocking finder, this time refusing the CDK itself
    # WHEN the app is built
    result = _synthesize_with(("aws_cdk",))

    # THEN the import fails naming the blocked module: the test above would see a runtime import
    assert result.returncode != 0
    assert "No module named 'aws_cdk' (blocked" in result.stderr


INFRASTRUCTURE_PACKAGES = ("common", "queue", "intake", "lambda_consumer", "worker_fleet", "stacks")
RUNTIME_MODULES = (
    "sqs_decoupling.video",
    "sqs_decoupling.producer",
    "sqs_decoupling.redrive",
    "sqs_decoupling.regions",
    "sqs_decoupling.queue.envelope",
    "sqs_decoupling.lambda_consumer.runtime",
    "sqs_decoupling.worker_fleet.worker",
)


def _imported_modules(source: Path) -> set[str]:
    """Every module ``source`` imports, at any depth (``from a import b`` counts as ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _runtime_imports(source: Path) -> list[str]:
    return sorted(
        name
        for name in _imported_modules(source)
        if any(name == runtime or name.startswith(runtime + ".") for runtime in RUNTIME_MODULES)
    )


def test_no_infrastructure_module_imports_a_runtime_package() -> None:
    # GIVEN the modules of the infrastructure packages (their runtime subpackages excluded)
    modules = [
        path
        for package in INFRASTRUCTURE_PACKAGES
        for path in sorted((REPO_ROOT / "sqs_decoupling" / package).glob("*.py"))
    ]
    assert len(modules) > 30

    # WHEN their imports are read
    offending = {str(path.relative_to(REPO_ROOT)): _runtime_imports(path) for path in modules}

    # THEN none imports a runtime package: what they share with the runtime comes from sqs_decoupling.contracts
    assert {path: names for path, names in offending.items() if names} == {}


def test_contracts_import_only_the_standard_library_and_each_other() -> None:
    # GIVEN the contracts modules
    contracts = sorted((REPO_ROOT / "sqs_decoupling" / "contracts").glob("*.py"))

    # WHEN their imports are read
    foreign = {
        str(path.relative_to(REPO_ROOT)): sorted(
            name
            for name in _imported_modules(path)
            if name.partition(".")[0] not in sys.stdlib_module_names and not name.startswith("sqs_decoupling.contracts")
        )
        for path in contracts
    }

    # THEN they name nothing else
    assert {path: names for path, names in foreign.items() if names} == {}


def test_the_import_check_sees_a_runtime_import(tmp_path: Path) -> None:
    # GIVEN a module that imports a runtime package inside a function
    module = tmp_path / "construct.py"
    module.write_text("def build():\n    from sqs_decoupling.video import ffmpeg\n    return ffmpeg\n")

    # WHEN its runtime imports are listed THEN the import is found
    assert _runtime_imports(module) == ["sqs_decoupling.video", "sqs_decoupling.video.ffmpeg"]


def test_every_package_init_is_a_docstring_only() -> None:
    # GIVEN every package of the product
    inits = sorted((REPO_ROOT / "sqs_decoupling").rglob("__init__.py"))

    # WHEN their bodies are read
    with_code = [
        str(path.relative_to(REPO_ROOT))
        for path in inits
        if [node for node in ast.parse(path.read_text()).body if not _is_docstring(node)]
    ]

    # THEN none runs code on import: importing a light module never loads a heavy neighbour
    assert with_code == []


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
