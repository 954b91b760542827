"""CI runs what users run, and its configuration stays pinned: the workflow's jobs, every action pinned by commit, and
Dependabot for each kind of pin (actions, Python packages, the CDK CLI)."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tools.localcloud.paths import REPO_ROOT

WORKFLOW: dict[str, Any] = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text())
WORKFLOW_TEXT = (REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text()
DEPENDABOT: dict[str, Any] = yaml.safe_load((REPO_ROOT / ".github" / "dependabot.yml").read_text())


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def _uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def test_the_test_job_keeps_its_matrix_caches_and_the_concurrency_group() -> None:
    # GIVEN the workflow THEN the gate job still runs both Pythons with pip, npm and wheelhouse caches
    job = WORKFLOW["jobs"]["test-and-synth"]
    assert job["strategy"]["matrix"]["python"] == ["3.11", "3.14"]
    assert "bash .ci/run" in _runs(job) and "make synth" in _runs(job)
    assert {"actions/setup-python", "actions/setup-node", "actions/cache"} <= set(_uses(job))
    # AND a newer push cancels a pull request's older run
    assert WORKFLOW["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert WORKFLOW["permissions"] == {"contents": "read"}


def test_a_job_runs_make_demo_and_keeps_its_summary() -> None:
    job = WORKFLOW["jobs"]["demo"]
    # THEN it runs `make demo` itself (set-up included), failing the job when the demo fails (pipefail: bash)
    step = next(step for step in job["steps"] if "make demo" in step.get("run", ""))
    assert step["shell"] == "bash"
    assert re.search(r"^make demo 2>&1 \| tee demo-summary\.txt$", step["run"].strip())
    # AND uploads the summary even when the demo fails
    upload = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "${{ !cancelled() }}"
    assert "demo-summary.txt" in upload["with"]["path"]


def test_a_job_without_node_on_path_runs_make_setup_and_cdk_synth() -> None:
    job = WORKFLOW["jobs"]["setup-without-node"]
    # THEN it runs in a Python image (no Node.js) and does not install one itself
    assert re.fullmatch(r"python:3\.11-[a-z]+", job["container"])
    assert "actions/setup-node" not in _uses(job)
    runs = _runs(job)
    # AND checks that premise, then takes the Node.js make setup installs from PyPI, and synthesizes with it
    assert "if command -v node; then" in runs
    assert runs.index("make setup") < runs.index('test "$(command -v node)" = "$PWD/.venv/bin/node"')
    assert runs.index('test "$(command -v node)"') < runs.index("npx cdk synth --quiet")


def test_every_action_is_pinned_by_commit_with_its_release_named() -> None:
    # GIVEN every `uses:` line of the workflow THEN each names a full commit SHA and, in a comment, the release
    uses = re.findall(r"^\s*(?:- )?uses: (\S+)(.*)$", WORKFLOW_TEXT, re.M)
    assert len(uses) >= 10
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+(\.\d+)*", comment), f"{action}: no release comment"
    # AND one action is at one commit everywhere
    pins: dict[str, set[str]] = {}
    for action, _ in uses:
        name, sha = action.split("@")
        pins.setdefault(name, set()).add(sha)
    assert all(len(shas) == 1 for shas in pins.values()), pins


def test_dependabot_proposes_weekly_grouped_updates_for_actions_python_and_the_cdk_cli() -> None:
    updates = {update["package-ecosystem"]: update for update in DEPENDABOT["updates"]}
    assert DEPENDABOT["version"] == 2
    assert set(updates) == {"github-actions", "pip", "npm"}
    for update in updates.values():
        assert update["schedule"]["interval"] == "weekly"
        assert [group["patterns"] for group in update["groups"].values()] == [["*"]]
    # AND every directory it watches for Python holds a manifest it reads
    for directory in updates["pip"]["directories"]:
        folder = REPO_ROOT / directory.lstrip("/")
        assert (
            any(folder.glob("requirements*.txt")) or any(folder.glob("*.lock")) or (folder / "pyproject.toml").is_file()
        )
    assert (REPO_ROOT / updates["npm"]["directory"].lstrip("/") / "package-lock.json").is_file()
