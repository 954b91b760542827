"""Asset bundling without Docker: the real Lambda and worker assets, built for the target architecture from
their locks, small enough for Lambda, and importable without the boto3 the Lambda runtime provides."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import boto3
import botocore
import pytest
import s3transfer

from stacks.app_builder import build_app
from stacks.constructs import python_bundling
from stacks.constructs.python_bundling import LAMBDA_RUNTIME_PROVIDES, PythonBundle
from stacks.video_pipeline_stack import HANDLER, video_processor_bundle
from tests.conftest import make_app

# The handler's file in the asset, from the function's Handler setting ("lambdas.video_processor.handler.x").
HANDLER_FILE = Path(*HANDLER.split(".")[:-1]).with_suffix(".py")

# One worker synthesizes the bundled app once for every test here (pytest-xdist --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bundled-assets")]

ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}
MIB = 2**20
# Lambda's limit for a function's unzipped code is 250 MB (262,144,000 bytes = 250 MiB); the project keeps 50 MiB
# of it free for the code users add.
ROOM_LIMIT = 200 * MIB
LAMBDA_LIMIT = 250 * MIB
RUNTIME_PROVIDED_MODULES = (boto3, botocore, s3transfer)
# dateutil's Windows time zones import winreg, which exists only on Windows; no code path here reaches them.
WINDOWS_ONLY = {"dateutil.tz.win", "dateutil.tzwin"}


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def _elf_machine(binary: Path) -> int:
    header = binary.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{binary} is not an ELF executable"
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthesize the app with bundling on (wheels come from build/wheelhouse, filled by `make setup`)."""
    outdir = tmp_path_factory.mktemp("bundled")
    app = build_app(
        make_app({"aws:cdk:bundling-stacks": ["VideoPipelineStack", "WorkerFleetStack"]}, bundle=True, outdir=outdir),
        control_tower_checks=False,
    )
    app.synth()
    found: dict[str, Path] = {}
    for stack in ("VideoPipelineStack", "WorkerFleetStack"):
        manifest = json.loads((outdir / f"{stack}.assets.json").read_text())
        for entry in manifest["files"].values():
            source = outdir / entry["source"]["path"]
            if (source / HANDLER_FILE).exists():
                found["lambda"] = source
            if (source / "worker" / "__main__.py").exists():
                found["worker"] = source
    return found


def test_the_lambda_asset_holds_the_handler_the_library_and_an_arm64_ffmpeg(assets: dict[str, Path]) -> None:
    asset = assets["lambda"]
    # the handler and its settings contract, at the import path the handler and the stack use
    assert (asset / HANDLER_FILE).is_file()
    assert (asset / HANDLER_FILE.parent / "settings.py").is_file()
    assert (asset / "lambdas" / "__init__.py").is_file()
    assert (asset / "video_processing" / "__init__.py").is_file()
    assert (asset / "aws_lambda_powertools").is_dir()
    ffmpeg = sorted((asset / "imageio_ffmpeg" / "binaries").glob("ffmpeg-linux-*"))
    assert len(ffmpeg) == 1 and "aarch64" in ffmpeg[0].name
    assert _elf_machine(ffmpeg[0]) == ELF_MACHINE["arm64"]
    # native extensions are built for Lambda's Python and architecture, not for this machine
    pydantic_core = sorted((asset / "pydantic_core").glob("_pydantic_core*.so"))
    assert pydantic_core and "cpython-314-aarch64" in pydantic_core[0].name
    # and the tests of this repository are not shipped
    assert not (asset / "tests").exists()


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_the_lambda_asset_leaves_room_under_lambdas_250_mb_limit_on_both_architectures(
    architecture: str, tmp_path: Path
) -> None:
    # GIVEN the Lambda asset for the architecture (the locked wheels installed by `make setup`, plus the sources)
    video_processor_bundle(architecture).bundle_into(tmp_path)
    # WHEN its unzipped size is taken, alone and with the largest optional dependency (a bundled boto3/botocore,
    # for a user who pins the SDK instead of using the runtime's)
    size = _size(tmp_path)
    optional = sum(_size(Path(module.__file__).parent) for module in RUNTIME_PROVIDED_MODULES)  # type: ignore[arg-type]
    print(f"Lambda asset {architecture}: {size / MIB:.1f} MiB, {(size + optional) / MIB:.1f} MiB with the SDK")
    # THEN it stays at or under 200 MiB, and under Lambda's 250 MiB with the SDK added
    assert size <= ROOM_LIMIT, f"{architecture}: {size / MIB:.1f} MiB"
    assert size + optional < LAMBDA_LIMIT, f"{architecture}: {(size + optional) / MIB:.1f} MiB with the SDK"


def test_no_asset_carries_bytecode_or_the_runtimes_own_sdk(assets: dict[str, Path]) -> None:
    # Bytecode compiled by this machine's Python (cpython-311) is dead weight for Python 3.14.
    for asset in assets.values():
        assert [p for p in asset.rglob("*.pyc")] == []
    assert [name for name in LAMBDA_RUNTIME_PROVIDES if (assets["lambda"] / name).exists()] == []
    assert (assets["worker"] / "botocore").is_dir()  # off Lambda, nothing provides it


def _import_everything(asset: Path, *extra: Path) -> dict[str, list[object]]:
    """Import every module of ``asset`` in a fresh interpreter with only the standard library besides."""
    script = Path(__file__).parents[2] / "support" / "import_everything.py"
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(script), str(asset), *map(str, extra)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def importable_lambda_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Lambda asset from the same lock, with wheels for this machine's Python and CPU, so it can be imported."""
    asset = tmp_path_factory.mktemp("lambda-here")
    video_processor_bundle("arm64").for_this_machine().bundle_into(asset)
    return asset


@pytest.fixture(scope="module")
def runtime_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding only what the Lambda runtime provides (boto3, botocore, s3transfer, from the venv)."""
    folder = tmp_path_factory.mktemp("lambda-runtime")
    for module in RUNTIME_PROVIDED_MODULES:
        (folder / module.__name__).symlink_to(Path(module.__file__).parent)  # type: ignore[arg-type]
    return folder


def test_every_module_of_the_lambda_asset_imports_with_only_the_runtimes_boto3_besides(
    importable_lambda_asset: Path, runtime_sdk: Path
) -> None:
    # GIVEN the Lambda asset's files and the runtime's boto3, botocore and s3transfer, nothing else
    # WHEN every module in the asset is imported
    result = _import_everything(importable_lambda_asset, runtime_sdk)
    # THEN the handler (in lambdas/video_processor/), the project's packages and the Encryption SDK import ...
    imported = set(map(str, result["imported"]))
    assert {"lambdas.video_processor.handler", "video_processing", "clientside", "aws_encryption_sdk"} <= imported
    assert "aws_lambda_powertools" in imported
    # ... and what fails is only an optional extra of a library (redis, django...) that nothing here installs
    shipped = {p.name.removesuffix(".py") for p in importable_lambda_asset.iterdir()} | {
        m.__name__ for m in RUNTIME_PROVIDED_MODULES
    }
    unexpected = [
        failure
        for failure in result["failed"]
        if failure[0] not in WINDOWS_ONLY
        and not (failure[1] == "ModuleNotFoundError" and str(failure[2]).split(".")[0] not in shipped)
    ]
    assert unexpected == []


def test_without_the_runtimes_boto3_the_encryption_sdk_does_not_import(importable_lambda_asset: Path) -> None:
    # GIVEN the Lambda asset alone (no runtime SDK beside it)
    # WHEN every module is imported
    failed = {str(f[0]): str(f[2]) for f in _import_everything(importable_lambda_asset)["failed"]}
    # THEN the Encryption SDK needs the boto3 that the asset leaves to the runtime (so the test above proves it)
    assert failed.get("aws_encryption_sdk") == "boto3"


def test_the_asset_hash_follows_the_lock_and_the_sources_not_the_requirements_text(tmp_path: Path) -> None:
    # GIVEN the Lambda bundle, and the same bundle whose requirements text differs (a comment) under the same lock
    bundle = video_processor_bundle("arm64")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# reworded\n" + (python_bundling.PROJECT_ROOT / bundle.requirements).read_text())
    reworded = replace(bundle, requirements=str(requirements), lock_file=str(bundle.lock))
    relocked = tmp_path / "other.lock"
    relocked.write_text(bundle.lock.read_text() + "six==1.17.0\n")
    # WHEN their asset hashes are compared, and with another lock
    # THEN the requirements text does not count, the lock does
    assert reworded.asset_hash() == bundle.asset_hash()
    assert replace(bundle, lock_file=str(relocked)).asset_hash() != bundle.asset_hash()


def test_a_second_bundle_reuses_the_installed_wheels_without_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a bundle whose locked wheels are installed (by `make setup` or an earlier synth)
    bundle = video_processor_bundle("arm64")
    installed = bundle.install_site_packages()

    def no_pip(*args: str) -> None:
        raise AssertionError(f"pip ran again: {args}")

    monkeypatch.setattr(python_bundling, "_pip", no_pip)
    # WHEN the asset is bundled again
    bundle.bundle_into(tmp_path)
    # THEN no pip runs: the asset links to the installed files (same inode), and holds the sources
    ffmpeg = next((installed / "imageio_ffmpeg" / "binaries").glob("ffmpeg-linux-*"))
    assert (tmp_path / ffmpeg.relative_to(installed)).stat().st_ino == ffmpeg.stat().st_ino
    assert (tmp_path / HANDLER_FILE).is_file()


def test_a_missing_lock_says_how_to_make_it() -> None:
    bundle: PythonBundle = replace(video_processor_bundle("arm64"), lock_file="nowhere/requirements.lock")
    with pytest.raises(RuntimeError, match=r"nowhere/requirements.lock is missing: run `make lock`"):
        bundle.asset_hash()


def test_the_worker_asset_holds_the_worker_the_library_and_wheels_for_python_3_11(assets: dict[str, Path]) -> None:
    asset = assets["worker"]
    assert (asset / "worker" / "__main__.py").is_file()
    assert (asset / "video_processing" / "__init__.py").is_file()
    assert (asset / "boto3").is_dir()
    ffmpeg = sorted((asset / "imageio_ffmpeg" / "binaries").glob("ffmpeg-linux-*"))
    assert len(ffmpeg) == 1 and _elf_machine(ffmpeg[0]) == ELF_MACHINE["arm64"]
    assert sorted((asset / "pydantic_core").glob("_pydantic_core.cpython-311-aarch64*.so"))
