#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` runs this. Configuration comes from cdk.json's context (see stacks/config.py)."""

from aws_cdk import App

from stacks.app_builder import build_app

build_app(App()).synth()
