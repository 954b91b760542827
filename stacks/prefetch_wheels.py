"""`python -m stacks.prefetch_wheels`: download the Linux wheels that the app's assets need.

`make setup` runs it, so that synthesis and the tests install wheels from build/wheelhouse/ without the network.
"""

from __future__ import annotations

import platform

from aws_cdk import App
from aws_cdk import aws_ec2 as ec2

from stacks.config import AppConfig
from stacks.constructs.worker_fleet import architecture_of
from stacks.video_pipeline_stack import video_processor_bundle
from stacks.worker_fleet_stack import worker_bundle


def host_architecture() -> str:
    """This machine's architecture as the bundles name it ("arm64" or "x86_64")."""
    return "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def main() -> None:
    config = AppConfig.from_context(App())  # cdk.json's context, as `cdk synth` reads it
    bundles = [
        video_processor_bundle(config.lambda_architecture),
        worker_bundle(architecture_of(ec2.InstanceType(config.worker_instance_type))),
        # The user-data install test (tests/integration/test_user_data_install.py) runs a worker asset built
        # for this machine.
        worker_bundle(host_architecture()),
    ]
    for bundle in dict.fromkeys(bundles):  # once each, in order
        wheelhouse = bundle.download_wheels()
        print(
            f"wheels for {bundle.requirements} ({bundle.architecture}, Python {bundle.python_version}): "
            f"{wheelhouse.relative_to(wheelhouse.parents[2])}"
        )


if __name__ == "__main__":
    main()
