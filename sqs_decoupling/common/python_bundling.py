"""Local (Docker-free) bundling of Python code plus Linux wheels for Lambda functions and EC2 instances.

CDK's PythonFunction always bundles in Docker. This bundler installs locked wheels built for the target platform
(``pip --platform``), so it runs on any machine with pip, and the asset holds native code (pydantic-core, ffmpeg)
for the target's architecture.

Two assets per bundle, because they change at different rates:

- the dependencies (the locked wheels, ffmpeg included: 150-230 MB): one zip per lock, built once into the bundling
  cache's archives/ and uploaded as it is (a Lambda layer, or an S3 object the instances unpack). A deploy after a
  code change neither zips nor uploads them again; a deploy into a new account uploads them without zipping them.
- the code (the project's source folders, well under 1 MB): a folder asset, which CDK zips when it publishes.

Reproducible and fast:

- Each bundle installs from a lock with hashes (``requirements-py<version>-<arch>.lock`` next to its requirements
  file, written by `make lock` with uv), so two machines build the same asset under the same hash.
- The code asset's hash comes from the sources and this module (the recipe); the dependencies asset's from the lock,
  the target and the recipe; neither from the requirements text.
- Wheels are downloaded once into the bundling cache's wheelhouse/ (`make setup` does it), installed once per lock
  into its site-packages/ and zipped once per lock into its archives/; the dependencies asset is a hard link to that
  zip, so synthesis after set-up needs no network, no pip run and no compression, and CDK skips bundling entirely
  when cdk.out already holds the asset's hash.

Where the cache is (:func:`bundling_cache`): ``$SQS_DECOUPLING_CACHE_DIR``; else the project's build/ folder when it
has one (this repository: the Makefile creates it, CI caches build/wheelhouse, .gitignore ignores it); else the
user's cache folder, so a copy in a `cdk init` app writes nothing into the project outside cdk.out.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, BundlingOutput, DockerImage, ILocalBundling

# The folder that holds the ``sqs_decoupling`` package: sources and requirements are found relative to it, so a copy
# of the package's folders into another app works without edits.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR_VARIABLE = "SQS_DECOUPLING_CACHE_DIR"
"""The environment variable that says where bundling keeps its downloads, installs and archives (an absolute path)."""
USER_CACHE_NAME = "sqs-decoupling-cdk"


def bundling_cache(environ: Mapping[str, str], project_root: Path) -> Path:
    """The folder for the wheels, their installs and their zips (hundreds of MB, reused by every synthesis):
    ``$SQS_DECOUPLING_CACHE_DIR`` if set; else ``project_root/build`` if the project has that folder; else
    ``$XDG_CACHE_HOME/sqs-decoupling-cdk`` (default ``~/.cache/sqs-decoupling-cdk``), outside the project, because
    the ``.gitignore`` that `cdk init` writes ignores cdk.out but not build/."""
    chosen = environ.get(CACHE_DIR_VARIABLE, "")
    if chosen:
        if not Path(chosen).expanduser().is_absolute():
            raise ValueError(
                f"{CACHE_DIR_VARIABLE} is {chosen!r}: set it to an absolute folder path (or unset it to use the "
                f"project's build/ folder if it has one, else ~/.cache/{USER_CACHE_NAME})."
            )
        return Path(chosen).expanduser()
    if (project_root / "build").is_dir():
        return project_root / "build"
    # The XDG base directory rule: a relative XDG_CACHE_HOME is invalid and ignored.
    xdg = environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if Path(xdg).is_absolute() else Path.home() / ".cache") / USER_CACHE_NAME


CACHE_DIR = bundling_cache(os.environ, PROJECT_ROOT)
WHEELHOUSE = CACHE_DIR / "wheelhouse"
SITE_PACKAGES = CACHE_DIR / "site-packages"
ARCHIVES = CACHE_DIR / "archives"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache")
_RECIPE = Path(__file__).read_bytes()

# A zip's entries carry this date (zip's epoch), so the same files always give the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
LAMBDA_LAYER_FOLDER = "python"
"""Where a Lambda layer's Python packages go: the Python runtimes put /opt/python on sys.path."""

LAMBDA_RUNTIME_PROVIDES = ("boto3", "botocore", "s3transfer")
"""Distributions the Lambda Python runtimes already ship, left out of the Lambda asset (34 MB, mostly botocore's
service models). The Encryption SDK, which depends on boto3, uses the runtime's copy: tests/unit/stacks/
test_asset_bundling.py imports every module of the asset against its own files plus these."""


def package_sources(*folders: str) -> tuple[tuple[str, str], ...]:
    """(source, name in the asset) pairs that lay each package folder out at its own path, with the ``__init__.py``
    of every package above it: ``package_sources("sqs_decoupling/video")`` gives ``sqs_decoupling/__init__.py`` and
    ``sqs_decoupling/video``, so the asset imports ``sqs_decoupling.video`` as the checkout does."""
    pairs: dict[str, None] = {}
    for folder in folders:
        parents = PurePosixPath(folder).parents
        for parent in reversed([p for p in parents if str(p) != "."]):
            pairs[f"{parent}/__init__.py"] = None
        pairs[folder] = None
    return tuple((path, path) for path in pairs)


def host_architecture() -> str:
    """This machine's architecture as the bundles name it ("arm64" or "x86_64")."""
    return "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


@dataclass(frozen=True)
class PythonBundle:
    """What goes into one bundle: its code asset (``sources``) and its dependencies asset (the lock).

    :param sources: (folder or file relative to ``PROJECT_ROOT``, name in the asset) pairs, e.g.
        ``package_sources("sqs_decoupling/video")``.
    :param requirements: a requirements file relative to ``PROJECT_ROOT``; its lock is what gets installed.
    :param architecture: "arm64" or "x86_64".
    :param python_version: the interpreter the asset runs under, e.g. "3.14".
    :param runtime_provides: distributions the target runtime already has, left out of the lock and the asset.
    :param lock_file: the lock to install; default ``requirements-py<version>-<arch>.lock`` beside requirements.
    """

    sources: tuple[tuple[str, str], ...]
    requirements: str
    architecture: str
    python_version: str
    runtime_provides: tuple[str, ...] = ()
    lock_file: str = ""

    @property
    def platforms(self) -> list[str]:
        return [f"manylinux2014_{self._machine}", f"manylinux_2_28_{self._machine}"]

    @property
    def lock(self) -> Path:
        """The lock with hashes this bundle installs (`make lock` writes it)."""
        if self.lock_file:
            return PROJECT_ROOT / self.lock_file
        requirements = PROJECT_ROOT / self.requirements
        return requirements.with_name(f"{requirements.stem}-py{self.python_version}-{self.architecture}.lock")

    @property
    def source_dir(self) -> str:
        """The folder CDK is pointed at; the custom asset hash, not this folder, decides when to re-bundle."""
        first = PROJECT_ROOT / self.sources[0][0]
        return str(first if first.is_dir() else first.parent)

    @property
    def wheelhouse(self) -> Path:
        return WHEELHOUSE / f"{self._label}-{self._lock_digest()[:12]}"

    @property
    def site_packages(self) -> Path:
        """The locked wheels installed for the target (built on first use, then shared by every asset)."""
        return SITE_PACKAGES / f"{self._label}-{self._layer_digest()[:12]}"

    def for_this_machine(self) -> PythonBundle:
        """The same locked packages built for the Python and architecture running this code, so that a test can
        import every module of the asset here."""
        architecture = host_architecture()
        lock = replace(self, architecture=architecture).lock
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        return replace(self, architecture=architecture, python_version=python, lock_file=str(lock))

    def code_hash(self) -> str:
        """A hash of the sources and the recipe, so CDK re-bundles the code exactly when one of them changes."""
        digest = hashlib.sha256(_RECIPE)
        digest.update(repr(self.sources).encode())  # where each source goes in the asset
        for path in sorted(self._source_files()):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def dependencies_hash(self, folder: str = "") -> str:
        """A hash of the lock, the target, the recipe and the folder in the zip: new only when one of them changes."""
        return hashlib.sha256(f"{self._layer_digest()}|{folder}".encode()).hexdigest()

    def code_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Code.from_asset`` / ``s3_assets.Asset``: the sources, bundled locally."""
        return self._options(self.code_hash(), _CopySources(self), BundlingOutput.NOT_ARCHIVED)

    def dependencies_options(self, folder: str = "") -> dict[str, Any]:
        """Keyword arguments for ``Code.from_asset`` / ``s3_assets.Asset``: the locked dependencies as one zip
        (:meth:`dependencies_archive`), with the packages under ``folder`` (``LAMBDA_LAYER_FOLDER`` for a layer)."""
        return self._options(self.dependencies_hash(folder), _LinkArchive(self, folder), BundlingOutput.ARCHIVED)

    def _options(self, asset_hash: str, local: ILocalBundling, output: BundlingOutput) -> dict[str, Any]:
        return {
            "asset_hash_type": AssetHashType.CUSTOM,
            "asset_hash": asset_hash,
            "bundling": BundlingOptions(
                # Only used if local bundling declined, which it never does; CDK requires an image anyway.
                image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{self.python_version}"),
                local=local,
                output_type=output,
            ),
        }

    def compile_lock(self, *, upgrade: bool = False) -> Path:
        """Resolve the requirements for the target platform and write the lock with hashes (needs PyPI): the pins the
        lock has are kept where the requirements allow them, or, with ``upgrade``, moved to the newest releases."""
        command = [
            *(sys.executable, "-m", "uv", "pip", "compile", self.requirements, "--quiet", "--generate-hashes"),
            *("--python-version", self.python_version, "--python-platform", f"{self._machine}-manylinux_2_28"),
            *("--custom-compile-command", "make lock", "--output-file", str(self.lock.relative_to(PROJECT_ROOT))),
        ]
        for name in self.runtime_provides:
            command += ["--no-emit-package", name]
        if upgrade:
            command.append("--upgrade")
        _run(command, what=f"Locking {self.requirements}")
        return self.lock

    def download_wheels(self) -> Path:
        """Fetch the locked wheels for the target platform into the wheelhouse (the one step that needs PyPI)."""
        target = self.wheelhouse
        if not (target / ".complete").exists():
            target.mkdir(parents=True, exist_ok=True)
            _pip("download", "--dest", str(target), *self._install_flags())
            (target / ".complete").touch()
        return target

    def install_site_packages(self) -> Path:
        """Install the locked wheels for the target once; later calls (and other processes) reuse the result."""
        target = self.site_packages
        if target.is_dir():
            return target
        wheels = self.download_wheels()
        SITE_PACKAGES.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=SITE_PACKAGES))
        try:
            # --no-compile: bytecode from this machine's Python would not match the target's (3.14 ignores
            # cpython-311 .pyc files, so they are dead weight); the runtime compiles what it imports.
            _pip("install", "--no-index", "--find-links", str(wheels), "--target", str(staging), "--no-compile",
                 *self._install_flags())  # fmt: skip
            _trim(staging)
            staging.rename(target)  # atomic: a parallel test worker sees no half-installed folder
        except OSError:
            if not target.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for stale in SITE_PACKAGES.glob(f"{self._label}-*"):
            if stale != target:  # an older lock's install: 100-200 MB each
                shutil.rmtree(stale, ignore_errors=True)
        return target

    def dependencies_archive(self, folder: str = "") -> Path:
        """The installed wheels zipped under ``folder``, built once per lock (a parallel build waits for the first);
        the same lock always gives the same bytes."""
        suffix = f"-{folder}" if folder else ""
        target = ARCHIVES / f"{self._label}{suffix}-{self.dependencies_hash(folder)[:12]}.zip"
        if target.is_file():
            return target
        installed = self.install_site_packages()
        ARCHIVES.mkdir(parents=True, exist_ok=True)
        with _exclusive(target.with_suffix(".lock")):
            if not target.is_file():
                staging = target.with_suffix(".partial")
                _zip_folder(installed, staging, under=folder)
                staging.rename(target)
        for stale in ARCHIVES.glob(f"{self._label}{suffix}-{'?' * 12}.*"):
            if stale.stem != target.stem:  # an older lock's archive (and its lock file)
                stale.unlink(missing_ok=True)
        return target

    def bundle_into(self, output_dir: Path) -> None:
        """What the code sees when it runs, in one folder: the installed wheels (hard links where the file system
        allows) plus a copy of the sources. Tests measure and import this."""
        shutil.copytree(self.install_site_packages(), output_dir, copy_function=_link_or_copy, dirs_exist_ok=True)
        self.copy_sources_into(output_dir)

    def copy_sources_into(self, output_dir: Path) -> None:
        """The code asset: a copy of the sources, without bytecode."""
        for source, name in self.sources:
            source_path = PROJECT_ROOT / source
            if source_path.is_dir():
                shutil.copytree(source_path, output_dir / name, ignore=_IGNORED, dirs_exist_ok=True)
            else:
                (output_dir / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source_path, output_dir / name)

    @property
    def _machine(self) -> str:
        return {"arm64": "aarch64", "x86_64": "x86_64"}[self.architecture]

    @property
    def _label(self) -> str:
        return f"{Path(self.requirements).parent.name}-cp{self.python_version.replace('.', '')}-{self.architecture}"

    def _lock_digest(self) -> str:
        if not self.lock.is_file():
            raise RuntimeError(f"{self.lock.relative_to(PROJECT_ROOT)} is missing: run `make lock` (needs PyPI)")
        return hashlib.sha256(self.lock.read_bytes()).hexdigest()

    def _layer_digest(self) -> str:
        digest = hashlib.sha256(f"{self.architecture}|{self.python_version}|".encode())
        digest.update(self._lock_digest().encode())
        digest.update(_RECIPE)
        return digest.hexdigest()

    def _install_flags(self) -> list[str]:
        flags = ["--no-deps", "--require-hashes", "-r", str(self.lock), "--only-binary=:all:"]
        flags += ["--implementation", "cp", "--python-version", self.python_version]
        for tag in self.platforms:
            flags += ["--platform", tag]
        return flags

    def _source_files(self) -> list[Path]:
        files = []
        for source, _ in self.sources:
            path = PROJECT_ROOT / source
            files += (
                [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
                if path.is_dir()
                else [path]
            )
        return files


def _trim(site_packages: Path) -> None:
    """Remove what no import needs: pip's console-script launchers (bin/ would call this machine's Python)."""
    shutil.rmtree(site_packages / "bin", ignore_errors=True)


def _zip_folder(folder: Path, archive: Path, *, under: str) -> None:
    """Every file of ``folder`` into ``archive`` (deflated, under ``under``), in name order, with its unix mode
    (the executable bit of ffmpeg) and a fixed date: the same files give the same bytes."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(PurePosixPath(under, path.relative_to(folder).as_posix())), _ZIP_EPOCH)
            info.external_attr = (path.stat().st_mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, zipped.open(info, "w") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)


@contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (another process building the same archive waits here)."""
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _link_or_copy(source: str, destination: str) -> str:
    try:
        os.link(source, destination)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, destination)
    return destination


def _pip(*args: str) -> None:
    _run([sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"], what="Bundling")


def _run(command: list[str], *, what: str) -> None:
    result = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed: `{' '.join(command)}` exited {result.returncode}:\n{result.stderr}")


@jsii.implements(ILocalBundling)
class _CopySources:
    """CDK's hook for bundling without Docker, for the code asset: called with the asset's output folder."""

    def __init__(self, bundle: PythonBundle) -> None:
        self._bundle = bundle

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        self._bundle.copy_sources_into(Path(output_dir))
        return True


@jsii.implements(ILocalBundling)
class _LinkArchive:
    """CDK's hook for bundling without Docker, for the dependencies asset: the output folder gets the archive
    (a hard link where the file system allows), which CDK then stages and publishes as it is."""

    def __init__(self, bundle: PythonBundle, folder: str) -> None:
        self._bundle, self._folder = bundle, folder

    def try_bundle(self, output_dir: str, *, image: DockerImage, **_: Any) -> bool:
        archive = self._bundle.dependencies_archive(self._folder)
        _link_or_copy(str(archive), str(Path(output_dir) / archive.name))
        return True
