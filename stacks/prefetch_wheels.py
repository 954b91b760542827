"""`python -m stacks.prefetch_wheels [--lock]`: lock, download and install the Linux wheels the assets need.

`make setup` runs it without arguments: the locked wheels of every asset (both architectures) are downloaded into
build/wheelhouse/ and installed into build/site-packages/, so synthesis and the tests bundle without the network
or pip. `make lock` runs it with ``--lock``: each asset's requirements are resolved again, per target Python and
architecture, into its lock with hashes.
"""

from __future__ import annotations

import sys

from stacks.constructs.python_bundling import PROJECT_ROOT, PythonBundle
from stacks.video_pipeline_stack import video_processor_bundle
from stacks.worker_fleet_stack import worker_bundle

ARCHITECTURES = ("arm64", "x86_64")


def every_bundle() -> list[PythonBundle]:
    """Every asset the app can build: the Lambda and the worker, for each architecture a configuration may pick."""
    return [make(architecture) for make in (video_processor_bundle, worker_bundle) for architecture in ARCHITECTURES]


def main(argv: list[str]) -> None:
    if argv == ["--lock"]:
        for bundle in every_bundle():
            print(f"locked {bundle.requirements}: {bundle.compile_lock().relative_to(PROJECT_ROOT)}")
        return
    # ... and the Lambda's locked packages for this machine, which the asset import test loads here.
    for bundle in [*every_bundle(), video_processor_bundle("arm64").for_this_machine()]:
        installed = bundle.install_site_packages()
        print(f"wheels for {bundle.requirements} ({bundle.architecture}, Python {bundle.python_version}): "
              f"{installed.relative_to(PROJECT_ROOT)}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
