"""Local (Docker-free) bundling of Python code plus Linux wheels for Lambda functions and EC2 instances.

CDK's PythonFunction always bundles in Docker. This bundler copies the project's source folders into the asset
and installs the requirements as wheels built for the target platform (``pip --platform``), so it runs on any
machine with pip, and the asset holds native code (pydantic-core, ffmpeg) for the target's architecture.
Wheels are downloaded once into build/wheelhouse/ (`make wheels` does it during set-up) and installed from there
with ``--no-index``, so synthesis after set-up needs no network.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling

# The folder that holds the ``stacks`` package: sources and requirements are found relative to it, so a copy of
# stacks/ next to the runtime folders it bundles (and build/wheelhouse/) works without edits.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = PROJECT_ROOT / "build" / "wheelhouse"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache")


@dataclass(frozen=True)
class PythonBundle:
    """What goes into one asset.

    :param sources: (folder or file relative to ``PROJECT_ROOT``, name in the asset) pairs, e.g.
        (("lambdas/video_processor", "lambdas/video_processor"), ("video_processing", "video_processing")).
    :param requirements: a requirements file relative to ``PROJECT_ROOT``, installed into the asset's root.
    :param architecture: "arm64" or "x86_64".
    :param python_version: the interpreter the asset runs under, e.g. "3.14".
    """

    sources: tuple[tuple[str, str], ...]
    requirements: str
    architecture: str
    python_version: str

    @property
    def platforms(self) -> list[str]:
        machine = {"arm64": "aarch64", "x86_64": "x86_64"}[self.architecture]
        return [f"manylinux2014_{machine}", f"manylinux_2_28_{machine}"]

    @property
    def source_dir(self) -> str:
        """The folder CDK is pointed at; the custom asset hash, not this folder, decides when to re-bundle."""
        first = PROJECT_ROOT / self.sources[0][0]
        return str(first if first.is_dir() else first.parent)

    @property
    def wheelhouse(self) -> Path:
        requirements = (PROJECT_ROOT / self.requirements).read_bytes()
        digest = hashlib.sha256(requirements).hexdigest()[:12]
        return WHEELHOUSE / f"cp{self.python_version.replace('.', '')}-{self.architecture}-{digest}"

    def asset_hash(self) -> str:
        """A hash of everything that goes into the asset, so CDK re-bundles exactly when one of them changes."""
        digest = hashlib.sha256(f"{self.architecture}|{self.python_version}".encode())
        for path in sorted(self._input_files()):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def asset_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Code.from_asset`` / ``s3_assets.Asset``: custom hash plus local bundling."""
        return {
            "asset_hash_type": AssetHashType.CUSTOM,
            "asset_hash": self.asset_hash(),
            "bundling": BundlingOptions(
                # Only used if local bundling declined, which it never does; CDK requires an image anyway.
                image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{self.python_version}"),
                local=LocalPipBundling(self),
            ),
        }

    def download_wheels(self) -> Path:
        """Fetch the wheels for the target platform into the wheelhouse (the one step that needs PyPI)."""
        target = self.wheelhouse
        if not (target / ".complete").exists():
            target.mkdir(parents=True, exist_ok=True)
            self._pip(
                "download", "--dest", str(target), *self._target_flags(), "-r", str(PROJECT_ROOT / self.requirements)
            )
            (target / ".complete").touch()
        return target

    def bundle_into(self, output_dir: Path) -> None:
        """Copy the sources and install the wheels into ``output_dir``."""
        for source, name in self.sources:
            source_path = PROJECT_ROOT / source
            if source_path.is_dir():
                shutil.copytree(source_path, output_dir / name, ignore=_IGNORED, dirs_exist_ok=True)
            else:
                shutil.copy2(source_path, output_dir / name)
        wheels = self.download_wheels()
        self._pip(
            "install",
            "--no-index",
            "--find-links",
            str(wheels),
            "--target",
            str(output_dir),
            *self._target_flags(),
            "-r",
            str(PROJECT_ROOT / self.requirements),
        )

    def _target_flags(self) -> list[str]:
        flags = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python_version]
        for platform in self.platforms:
            flags += ["--platform", platform]
        return flags

    def _input_files(self) -> list[Path]:
        files = [PROJECT_ROOT / self.requirements]
        for source, _ in self.sources:
            path = PROJECT_ROOT / source
            files += (
                [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
                if path.is_dir()
                else [path]
            )
        return files

    @staticmethod
    def _pip(*args: str) -> None:
        command = [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"Bundling failed: `{' '.join(command)}` exited {result.returncode}:\n{result.stderr}")


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    """CDK's hook for bundling without Docker: called with the asset's output folder."""

    def __init__(self, bundle: PythonBundle) -> None:
        self._bundle = bundle

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        self._bundle.bundle_into(Path(output_dir))
        return True
