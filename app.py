#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` runs this. Configuration comes from cdk.json's context (see
sqs_decoupling/stacks/config.py)."""

import sys

from aws_cdk import App

from sqs_decoupling.stacks.app_builder import build_app
from sqs_decoupling.stacks.config import ConfigError

try:
    app = build_app(App())
except ConfigError as error:  # one line naming the key, no traceback
    sys.exit(f"Configuration error: {error}")
app.synth()
