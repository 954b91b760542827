"""`pip install .` installs the runtime only, under the one namespace: the worker, the two CLIs and what they import,
never the stacks, the constructs beside the runtimes, or the tools."""

from __future__ import annotations

import ast
import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools.localcloud.paths import REPO_ROOT

# Every test here goes to one pytest-xdist process (--dist loadgroup), so the wheel is built once per run, not once
# in each process that runs one of them. Packaging is a release gate: `make test` runs it, the inner loop does not.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]

# What the review found in site-packages before the namespace: none of these may be a top-level name again.
GENERIC_TOP_LEVEL = {
    "stacks",
    "cost",
    "scaling",
    "localcloud",
    "demo",
    "bench",
    "worker",
    "producer",
    "redrive",
    "tools",
}


# PEP 517's build_wheel hook of the backend pyproject.toml names: the call `pip install .` makes to build the wheel
# it installs, made here in one process (pip runs it in two more of its own, for the same wheel, byte for byte).
BUILD_WHEEL = """
import importlib, sys, tomllib
backend = tomllib.load(open("pyproject.toml", "rb"))["build-system"]["build-backend"]
importlib.import_module(backend).build_wheel(sys.argv[1])
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel `pip install .` would install, built by the project's build backend from a copy of the tracked
    files (the build writes its own build/ and egg-info next to the sources; the copy keeps the checkout as it was)."""
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    for name in tracked.stdout.split():
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-c", BUILD_WHEEL, str(out)], cwd=source, check=True, capture_output=True)
    (built,) = out.glob("*.whl")
    return zipfile.ZipFile(built)


def python_modules(wheel: zipfile.ZipFile) -> dict[str, str]:
    """module name -> source, for every .py file the wheel installs."""
    modules = {}
    for name in wheel.namelist():
        if name.endswith(".py"):
            parts = Path(name).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = wheel.read(name).decode()
    return modules


def test_the_wheel_installs_one_namespace_and_no_generic_top_level_package(wheel: zipfile.ZipFile) -> None:
    # GIVEN the wheel WHEN its top-level names are read
    top_level = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    # THEN there is one, the distribution's namespace, and none of the generic names
    assert top_level == {"sqs_decoupling"}
    assert not top_level & GENERIC_TOP_LEVEL


def test_the_wheel_holds_the_runtimes_and_not_the_infrastructure_or_the_test_seams(wheel: zipfile.ZipFile) -> None:
    modules = python_modules(wheel)
    # THEN the runtimes are there
    for runtime in (
        "sqs_decoupling.worker_fleet.worker.__main__",
        "sqs_decoupling.producer.cli",
        "sqs_decoupling.redrive.cli",
        "sqs_decoupling.lambda_consumer.runtime.handler",
        "sqs_decoupling.video.pipeline",
        "sqs_decoupling.queue.envelope.envelope",
        "sqs_decoupling.contracts.sqs",
    ):
        assert runtime in modules, runtime
    # AND nothing that imports the CDK: no stack, no construct
    cdk_users = sorted(name for name, source in modules.items() if "aws_cdk" in source or "from constructs" in source)
    assert cdk_users == []
    assert not [name for name in modules if name.startswith(("sqs_decoupling.stacks", "sqs_decoupling.common"))]
    # AND no test seam: the worker's fake jobs live in tests/support/
    assert not [name for name in modules if "testing" in name or "fake" in name]
    assert not [name for name, source in modules.items() if "TEST_HANDLER" in source]


def test_every_module_the_wheel_installs_imports_only_modules_the_wheel_installs(wheel: zipfile.ZipFile) -> None:
    # GIVEN each installed module's imports of the namespace
    modules = python_modules(wheel)
    missing = {
        f"{name} imports {target}"
        for name, source in modules.items()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for target in ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        + ([alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        if target.startswith("sqs_decoupling.")
        and target not in modules
        and not any(module.startswith(target + ".") for module in modules)
    }
    # THEN each of them is installed too (an installed worker never fails on an import of the checkout)
    assert not missing, sorted(missing)


def test_each_console_script_names_a_module_the_wheel_installs(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt")]
    scripts = configparser.ConfigParser()
    scripts.read_string(wheel.read(entry_points).decode())
    targets = {name: value.split(":")[0] for name, value in scripts["console_scripts"].items()}
    assert set(targets) == {"video-worker", "sqs-submit", "sqs-redrive"}
    modules = python_modules(wheel)
    assert all(module in modules for module in targets.values()), targets


def test_pip_install_of_the_wheel_puts_one_package_into_site_packages(wheel: zipfile.ZipFile, tmp_path: Path) -> None:
    # GIVEN an empty folder standing for a fresh environment's site-packages
    site_packages = tmp_path / "site-packages"
    # WHEN pip installs the wheel there (its dependencies are the runtime's own: boto3, Powertools, ffmpeg, the SDK)
    pip = (sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet")
    subprocess.run(
        [*pip, "--target", str(site_packages), str(wheel.filename)],
        check=True,
        capture_output=True,
    )
    # THEN the packages it adds are one: the namespace, beside the distribution's metadata and the scripts
    installed = {path.name for path in site_packages.iterdir() if not path.name.endswith(".dist-info")}
    assert installed - {"bin"} == {"sqs_decoupling"}
    assert not installed & GENERIC_TOP_LEVEL
