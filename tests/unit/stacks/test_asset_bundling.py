"""Asset bundling without Docker: the real Lambda and worker assets, built for the target architecture from
their locks, small enough for Lambda, and importable without the boto3 the Lambda runtime provides.

Each bundle is two assets: its code (a folder CDK zips when it publishes) and its locked dependencies (one zip,
built once per lock, published as it is: the Lambda function's layer, or the object the instances unpack first)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import boto3
import botocore
import pytest
import s3transfer

from sqs_decoupling.common import python_bundling
from sqs_decoupling.common.python_bundling import LAMBDA_LAYER_FOLDER, LAMBDA_RUNTIME_PROVIDES, PythonBundle
from sqs_decoupling.stacks.app_builder import build_app
from sqs_decoupling.stacks.video_pipeline_stack import HANDLER, video_processor_bundle
from tests.conftest import make_app

# The handler's file in the asset, from the function's Handler setting
# ("sqs_decoupling.lambda_consumer.runtime.handler.x").
HANDLER_FILE = Path(*HANDLER.split(".")[:-1]).with_suffix(".py")
WORKER_MAIN = Path("sqs_decoupling", "worker_fleet", "worker", "__main__.py")

# One worker synthesizes the bundled app once for every test here (pytest-xdist --dist loadgroup).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("bundled-assets")]

# The stacks that bundle code (SecureQueueStack has no asset).
STACKS_WITH_ASSETS = ("VideoPipelineStack", "WorkerFleetStack")
ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}
MIB = 2**20
# Lambda's limit for a function's unzipped code and layers is 250 MB (262,144,000 bytes = 250 MiB); the project
# keeps 50 MiB of it free for the code users add.
ROOM_LIMIT = 200 * MIB
LAMBDA_LIMIT = 250 * MIB
RUNTIME_PROVIDED_MODULES = (boto3, botocore, s3transfer)
# dateutil's Windows time zones import winreg, which exists only on Windows; no code path here reaches them.
WINDOWS_ONLY = {"dateutil.tz.win", "dateutil.tzwin"}


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and "__pycache__" not in f.parts)


def _elf_machine(header: bytes) -> int:
    assert header[:4] == b"\x7fELF", "not an ELF executable"
    return int.from_bytes(header[18:20], "little")


class Archive:
    """A dependencies asset: a zip as it is published."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with zipfile.ZipFile(path) as zipped:
            self.infos = {info.filename: info for info in zipped.infolist()}

    def names(self, pattern: str) -> list[str]:
        return sorted(name for name in self.infos if Path(name).match(pattern))

    def head(self, name: str) -> bytes:
        with zipfile.ZipFile(self.path) as zipped, zipped.open(name) as member:
            return member.read(20)

    def mode(self, name: str) -> int:
        return self.infos[name].external_attr >> 16


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthesize the stacks with assets with bundling on (wheels and archives come from build/, filled by `make
    setup`): each bundle's code folder ("lambda", "worker") and dependencies zip ("lambda-layer",
    "worker-dependencies")."""
    outdir = tmp_path_factory.mktemp("bundled")
    app = build_app(
        make_app({"aws:cdk:bundling-stacks": list(STACKS_WITH_ASSETS)}, bundle=True, outdir=outdir),
        control_tower_checks=False,
        stacks=STACKS_WITH_ASSETS,
    )
    app.synth()
    found: dict[str, Path] = {}
    for stack in STACKS_WITH_ASSETS:
        manifest = json.loads((outdir / f"{stack}.assets.json").read_text())
        for entry in manifest["files"].values():
            source = outdir / entry["source"]["path"]
            if (source / HANDLER_FILE).exists():
                found["lambda"] = source
            if (source / WORKER_MAIN).exists():
                found["worker"] = source
            if source.suffix == ".zip":
                with zipfile.ZipFile(source) as zipped:
                    names = zipped.namelist()
                if f"{LAMBDA_LAYER_FOLDER}/aws_lambda_powertools/__init__.py" in names:
                    found["lambda-layer"] = source
                if "boto3/__init__.py" in names:
                    found["worker-dependencies"] = source
    assert set(found) == {"lambda", "lambda-layer", "worker", "worker-dependencies"}, found
    return found


def test_the_lambda_code_asset_holds_the_handler_and_the_projects_packages_only(assets: dict[str, Path]) -> None:
    asset = assets["lambda"]
    # the handler and its settings contract, at the import path the handler and the stack use
    assert (asset / HANDLER_FILE).is_file()
    assert (asset / "sqs_decoupling" / "contracts" / "lambda_function.py").is_file()
    assert (asset / "sqs_decoupling" / "lambda_consumer" / "__init__.py").is_file()
    assert (asset / "sqs_decoupling" / "video" / "__init__.py").is_file()
    # nothing else: no wheels (they are in the layer), not the stacks or constructs, not the tests of this repository
    assert [p.name for p in asset.iterdir()] == ["sqs_decoupling"]
    assert _names(asset / "sqs_decoupling") == ["__init__.py", "contracts", "lambda_consumer", "queue", "video"]
    assert _names(asset / "sqs_decoupling" / "lambda_consumer") == ["__init__.py", "runtime"]
    assert _names(asset / "sqs_decoupling" / "queue") == ["__init__.py", "envelope"]
    assert _size(asset) < MIB


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_the_lambda_layer_holds_the_locked_packages_and_an_executable_arm64_ffmpeg(assets: dict[str, Path]) -> None:
    layer = Archive(assets["lambda-layer"])
    # everything under python/, which the Python runtimes put on sys.path
    assert all(name.startswith(f"{LAMBDA_LAYER_FOLDER}/") for name in layer.infos)
    assert layer.names("python/aws_lambda_powertools/__init__.py")
    (ffmpeg,) = layer.names("python/imageio_ffmpeg/binaries/ffmpeg-linux-*")
    assert "aarch64" in ffmpeg and _elf_machine(layer.head(ffmpeg)) == ELF_MACHINE["arm64"]
    # Lambda unpacks a layer with the modes its zip records: ffmpeg must be executable
    assert layer.mode(ffmpeg) & 0o111 == 0o111
    # native extensions are built for Lambda's Python and architecture, not for this machine
    (pydantic_core,) = layer.names("python/pydantic_core/_pydantic_core*.so")
    assert "cpython-314-aarch64" in pydantic_core


@pytest.mark.parametrize("architecture", ["arm64", "x86_64"])
def test_the_lambda_asset_leaves_room_under_lambdas_250_mb_limit_on_both_architectures(
    architecture: str, tmp_path: Path
) -> None:
    # GIVEN what the function sees for the architecture: its code plus its layer, unzipped
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
    for name in ("lambda", "worker"):
        assert [p for p in assets[name].rglob("*.pyc")] == []
    for name in ("lambda-layer", "worker-dependencies"):
        assert Archive(assets[name]).names("*.pyc") == []
    layer = Archive(assets["lambda-layer"])
    assert [name for name in LAMBDA_RUNTIME_PROVIDES if layer.names(f"python/{name}/__init__.py")] == []
    assert Archive(assets["worker-dependencies"]).names("botocore/__init__.py")  # off Lambda, nothing provides it


def _import_everything(asset: Path, *extra: Path) -> dict[str, list[object]]:
    """Import every module of ``asset`` in a fresh interpreter with only the standard library besides."""
    script = Path(__file__).parents[2] / "support" / "import_everything.py"
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(script), str(asset), *map(str, extra)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)  # type: ignore[no-any-return]


# Imports the Encryption SDK with only the folder given on sys.path, and prints why it failed.
IMPORT_ENCRYPTION_SDK = """
import sys
sys.path[:0] = [sys.argv[1]]
try:
    import aws_encryption_sdk
except ImportError as error:
    print(type(error).__name__, error.name, end="")
"""


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
    # THEN the handler (in sqs_decoupling/lambda_consumer/runtime/), the project's packages and the Encryption SDK
    # import ...
    imported = set(map(str, result["imported"]))
    assert {
        "sqs_decoupling.lambda_consumer.runtime.handler",
        "sqs_decoupling.video",
        "sqs_decoupling.queue.envelope",
        "aws_encryption_sdk",
    } <= imported
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
    # GIVEN the Lambda asset alone (no runtime SDK beside it), in a fresh interpreter with only the standard library
    # WHEN the Encryption SDK is imported from it
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_ENCRYPTION_SDK, str(importable_lambda_asset)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    # THEN it needs the boto3 that the asset leaves to the runtime (so the test above proves it)
    assert result.stdout == "ModuleNotFoundError boto3"


def test_the_dependencies_hash_follows_the_lock_and_the_code_hash_the_sources(tmp_path: Path) -> None:
    # GIVEN the Lambda bundle, the same bundle whose requirements text differs (a comment) under the same lock,
    # the bundle under another lock, and the bundle with one source folder fewer
    bundle = video_processor_bundle("arm64")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# reworded\n" + (python_bundling.PROJECT_ROOT / bundle.requirements).read_text())
    reworded = replace(bundle, requirements=str(requirements), lock_file=str(bundle.lock))
    relocked_file = tmp_path / "other.lock"
    relocked_file.write_text(bundle.lock.read_text() + "six==1.17.0\n")
    relocked = replace(bundle, lock_file=str(relocked_file))
    fewer_sources = replace(bundle, sources=bundle.sources[:-1])
    # WHEN their hashes are compared
    # THEN the requirements text counts for neither; the lock only for the dependencies, the sources only for the
    # code (a code change publishes no new layer); the folder in the zip makes another dependencies asset
    assert (reworded.dependencies_hash(), reworded.code_hash()) == (bundle.dependencies_hash(), bundle.code_hash())
    assert relocked.dependencies_hash() != bundle.dependencies_hash() and relocked.code_hash() == bundle.code_hash()
    assert fewer_sources.code_hash() != bundle.code_hash()
    assert fewer_sources.dependencies_hash() == bundle.dependencies_hash()
    assert bundle.dependencies_hash(LAMBDA_LAYER_FOLDER) != bundle.dependencies_hash()


def test_a_second_bundle_reuses_the_installed_wheels_and_the_archive_without_pip_or_zipping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a bundle whose locked wheels are installed and zipped (by `make setup` or an earlier synth)
    bundle = video_processor_bundle("arm64")
    installed = bundle.install_site_packages()
    archive = bundle.dependencies_archive(LAMBDA_LAYER_FOLDER)

    def no_pip(*args: str) -> None:
        raise AssertionError(f"pip ran again: {args}")

    def no_zip(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"zipped again: {args}")

    monkeypatch.setattr(python_bundling, "_pip", no_pip)
    monkeypatch.setattr(python_bundling, "_zip_folder", no_zip)
    # WHEN the assets are bundled again
    bundle.bundle_into(tmp_path)
    again = bundle.dependencies_archive(LAMBDA_LAYER_FOLDER)
    # THEN no pip runs and nothing is zipped: the folder links to the installed files (same inode) and holds the
    # sources, and the dependencies asset is the same archive
    ffmpeg = next((installed / "imageio_ffmpeg" / "binaries").glob("ffmpeg-linux-*"))
    assert (tmp_path / ffmpeg.relative_to(installed)).stat().st_ino == ffmpeg.stat().st_ino
    assert (tmp_path / HANDLER_FILE).is_file()
    assert again == archive and again.stat().st_size > 0


def test_an_archive_of_the_same_files_has_the_same_bytes_and_keeps_their_modes(tmp_path: Path) -> None:
    # GIVEN a folder with an executable and a plain file
    folder = tmp_path / "site-packages"
    (folder / "pkg" / "bin").mkdir(parents=True)
    (folder / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (folder / "pkg" / "bin" / "tool").write_bytes(b"\x7fELF" + bytes(100))
    (folder / "pkg" / "bin" / "tool").chmod(0o755)
    # WHEN it is zipped twice under python/, its files touched in between
    python_bundling._zip_folder(folder, tmp_path / "first.zip", under=LAMBDA_LAYER_FOLDER)
    for path in folder.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    python_bundling._zip_folder(folder, tmp_path / "second.zip", under=LAMBDA_LAYER_FOLDER)
    # THEN both archives are byte for byte the same, hold the files under python/, and keep the executable bit
    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()
    archive = Archive(tmp_path / "first.zip")
    assert sorted(archive.infos) == ["python/pkg/__init__.py", "python/pkg/bin/tool"]
    assert archive.mode("python/pkg/bin/tool") & 0o777 == 0o755
    assert archive.mode("python/pkg/__init__.py") & 0o111 == 0


def test_a_missing_lock_says_how_to_make_it() -> None:
    bundle: PythonBundle = replace(video_processor_bundle("arm64"), lock_file="nowhere/requirements.lock")
    with pytest.raises(RuntimeError, match=r"nowhere/requirements.lock is missing: run `make lock`"):
        bundle.dependencies_hash()


def test_the_worker_assets_hold_the_worker_the_library_and_wheels_for_python_3_11(assets: dict[str, Path]) -> None:
    # the code: the worker and the project's packages it imports, nothing else
    code = assets["worker"]
    assert (code / WORKER_MAIN).is_file()
    assert (code / "sqs_decoupling" / "video" / "__init__.py").is_file()
    assert _names(code / "sqs_decoupling") == ["__init__.py", "contracts", "queue", "regions", "video", "worker_fleet"]
    assert _names(code / "sqs_decoupling" / "worker_fleet") == ["__init__.py", "worker"]
    assert not (code / "boto3").exists()
    # the dependencies, at the top of the zip (unpacked into the same folder as the code)
    dependencies = Archive(assets["worker-dependencies"])
    assert dependencies.names("boto3/__init__.py")
    (ffmpeg,) = dependencies.names("imageio_ffmpeg/binaries/ffmpeg-linux-*")
    assert _elf_machine(dependencies.head(ffmpeg)) == ELF_MACHINE["arm64"]
    assert dependencies.names("pydantic_core/_pydantic_core.cpython-311-aarch64*.so")
