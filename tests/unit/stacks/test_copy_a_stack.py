"""README's "Copy a stack": the stacks build, with their own defaults, from a folder holding only copies of the
folders they need (sqs_decoupling/: the components, their runtimes and the stacks; build/'s wheelhouse and archives;
cdk.json), with zero edits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# In that interpreter cdk-nag and cdk-validator-cfnguard cannot be imported: the stacks and their constructs need
# neither (acknowledgements need only aws_cdk; sqs_decoupling/stacks/app_builder.py registers the plugins).
BLOCK_PLUGINS = (
    "import sys; sys.modules.update(dict.fromkeys(['cdk_nag', 'cdklabs', 'cdklabs.cdk_validator_cfnguard']))\n"
)
# The snippet, as a user writes it in their own project.
APP = """\
from aws_cdk import App
from sqs_decoupling.stacks.secure_queue_stack import SecureQueueStack
from sqs_decoupling.stacks.video_pipeline_stack import VideoPipelineStack
from sqs_decoupling.stacks.worker_fleet_stack import WorkerFleetStack

app = App()
SecureQueueStack(app, "CopiedSecureQueue")
VideoPipelineStack(app, "CopiedPipeline")
WorkerFleetStack(app, "CopiedFleet")
app.synth()
"""
COPIED = ("sqs_decoupling",)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")


@pytest.mark.slow
def test_the_three_stacks_synthesize_from_a_copy_of_their_folders_with_their_own_defaults(tmp_path: Path) -> None:
    # GIVEN a project folder with a copy of sqs_decoupling/, the wheelhouse and the dependency archives, and cdk.json,
    # nothing else
    project = tmp_path / "my-project"
    project.mkdir()
    for folder in COPIED:
        shutil.copytree(REPO_ROOT / folder, project / folder, ignore=IGNORED)
    (project / "build").mkdir()
    # They are large (Linux wheels with ffmpeg, and their zips): a link to each is the same files, read only.
    for built in ("wheelhouse", "archives"):
        (project / "build" / built).symlink_to(REPO_ROOT / "build" / built, target_is_directory=True)
    shutil.copy2(REPO_ROOT / "cdk.json", project / "cdk.json")
    outdir = tmp_path / "cdk.out"
    # WHEN the app runs there in a fresh interpreter (one that cannot import cdk-nag or the guard plugin),
    # given cdk.json's context (feature flags) the way the CDK CLI passes it, and bundles its assets from the copied
    # folders
    context = json.loads((project / "cdk.json").read_text())["context"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(context),
    }
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_PLUGINS + APP],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    # THEN all three stacks synthesize
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = {
        name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {"CopiedSecureQueue", "CopiedPipeline", "CopiedFleet"}
    # AND the same interpreter, there, imports every copied package from the copy, not from this repository
    where = subprocess.run(
        [sys.executable, "-c", f"import {', '.join(COPIED)}; print({', '.join(f'{m}.__file__' for m in COPIED)})"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.count(str(project)) == len(COPIED), where.stdout
    # AND the code assets were built from the copy: the Lambda's holds the copied handler (its settings contract is in
    # both assets); the dependencies are the archives `make setup` built for the same locks (the copy installed nothing)
    lambda_assets = list(outdir.glob("asset.*/sqs_decoupling/lambda_consumer/runtime/handler.py"))
    assert len(lambda_assets) == 1
    assert len(list(outdir.glob("asset.*.zip"))) == 2
    assert not (project / "build" / "site-packages").exists()
