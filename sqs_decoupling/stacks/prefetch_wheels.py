"""`python -m sqs_decoupling.stacks.prefetch_wheels [--lock [--upgrade]]`: lock, download, install and zip the
assets' Linux wheels.

`make setup` runs it without arguments: the locked wheels of every asset (both architectures) are downloaded into the
bundling cache's wheelhouse/ (build/ in this repository, see ``python_bundling.bundling_cache``), installed into its
site-packages/ and zipped into its archives/ (the dependencies assets), so synthesis and the tests bundle without the
network, pip or compression. `make lock` runs it with ``--lock``: each asset's requirements are resolved again, per
target Python and architecture, into its lock with hashes (keeping each pin the requirements still allow; with
``--upgrade``, the newest release each allows: `make lock UPGRADE=1`).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqs_decoupling.common.python_bundling import LAMBDA_LAYER_FOLDER, PROJECT_ROOT, PythonBundle
from sqs_decoupling.stacks.video_pipeline_stack import video_processor_bundle
from sqs_decoupling.stacks.worker_fleet_stack import worker_bundle

ARCHITECTURES = ("arm64", "x86_64")


def every_bundle() -> list[PythonBundle]:
    """Every asset the app can build: the Lambda and the worker, for each architecture a configuration may pick."""
    return [make(architecture) for make in (video_processor_bundle, worker_bundle) for architecture in ARCHITECTURES]


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--lock":
        if argv[1:] not in ([], ["--upgrade"]):
            sys.exit(
                f"usage: python -m sqs_decoupling.stacks.prefetch_wheels [--lock [--upgrade]], not {' '.join(argv)}"
            )
        for bundle in every_bundle():
            lock = bundle.compile_lock(upgrade=argv[1:] == ["--upgrade"])
            print(f"locked {bundle.requirements}: {lock.relative_to(PROJECT_ROOT)}")
        return
    # ... and the Lambda's locked packages for this machine, which the asset import test loads here.
    for bundle in [*every_bundle(), video_processor_bundle("arm64").for_this_machine()]:
        installed = bundle.install_site_packages()
        print(f"wheels for {bundle.requirements} ({bundle.architecture}, Python {bundle.python_version}): "
              f"{_shown(installed)}")  # fmt: skip
    # Deflating is most of this step's time; zlib lets other threads run meanwhile.
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        for archive in pool.map(lambda spec: spec[0].dependencies_archive(spec[1]), every_archive()):
            print(f"dependencies asset: {_shown(archive)}")


def every_archive() -> list[tuple[PythonBundle, str]]:
    """Every dependencies asset the app can build, with the folder its packages go under (a layer's for Lambda)."""
    return [(video_processor_bundle(a), LAMBDA_LAYER_FOLDER) for a in ARCHITECTURES] + [
        (worker_bundle(a), "") for a in ARCHITECTURES
    ]


def _shown(path: Path) -> Path:
    """A cache path as printed: relative to the project when the cache is in it (build/), else absolute."""
    return path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path


if __name__ == "__main__":
    main(sys.argv[1:])
