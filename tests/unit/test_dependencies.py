"""Pins and the dependency split: the gate tools and moto are exact, every lock carries hashes, and the runtime
install (the on-premises worker's `pip install .`) pulls no CDK."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from sqs_decoupling.stacks.prefetch_wheels import every_bundle
from tools.localcloud import moto_compat
from tools.localcloud.paths import REPO_ROOT

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
CDK = {"aws-cdk-lib", "constructs", "cdk-nag", "cdklabs.cdk-validator-cfnguard"}
GATE_TOOLS = {"ruff", "mypy", "cfn-lint", "pytest", "pytest-xdist"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower()


def _pins(lock: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line of a lock."""
    return {m[1].lower(): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", lock.read_text(), re.M)}


def test_the_base_install_pulls_no_cdk_which_has_its_own_extra() -> None:
    base = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert base & CDK == set()
    assert {_name(r) for r in extras["cdk"]} == CDK
    assert "sqs-decoupling-cdk[cdk]" in extras["dev"]


def test_the_worker_and_the_producer_cli_run_without_importing_the_cdk() -> None:
    # GIVEN a fresh interpreter WHEN the on-premises entry points are imported THEN aws_cdk is not loaded
    code = (
        "import sys, sqs_decoupling.worker_fleet.worker.__main__, sqs_decoupling.producer.cli; "
        "print('aws_cdk' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    for bundle in every_bundle():
        if bundle.requirements.startswith("sqs_decoupling/worker_fleet/worker/"):
            assert set(_pins(bundle.lock)) & CDK == set()


def test_gate_tools_and_moto_are_pinned_exactly_and_locked_with_hashes() -> None:
    dev = {_name(r): r for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    for tool in [*GATE_TOOLS, "moto"]:
        assert re.fullmatch(rf"{re.escape(tool)}(\[[a-z,]+\])?=={re.escape(_pins_dev()[tool])}", dev[tool]), dev[tool]
    assert _pins_dev()["moto"] in moto_compat.TESTED_WITH, "pin a moto of moto_compat.TESTED_WITH"
    for tool in GATE_TOOLS:  # what `make setup` installed is what the lock says
        assert version(tool) == _pins_dev()[tool], tool


def _pins_dev() -> dict[str, str]:
    return _pins(REPO_ROOT / "requirements" / "dev.lock")


LOCKS = ["requirements/dev.lock", *(str(b.lock.relative_to(REPO_ROOT)) for b in every_bundle())]


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_of_every_lock_carries_a_hash(lock: str) -> None:
    text = (REPO_ROOT / lock).read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    pinned = [e for e in entries if "==" in e.split("\n")[0]]
    assert pinned and all("--hash=sha256:" in e for e in pinned)


def test_each_asset_lock_pins_every_requirement_of_its_bundle() -> None:
    # A requirement added without `make lock` would otherwise be silently missing from the asset.
    for bundle in every_bundle():
        wanted = {
            _name(line)
            for line in (REPO_ROOT / bundle.requirements).read_text().splitlines()
            if line.strip() and not line.startswith("#")
        }
        assert wanted - set(_pins(bundle.lock)) == set(), bundle.lock
