#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` runs this. Configuration comes from cdk.json's context (see stacks/config.py)."""

import sys

from aws_cdk import App

from stacks.app_builder import build_app
from stacks.config import ConfigError

try:
    app = build_app(App())
except ConfigError as error:  # one line naming the key, no traceback
    sys.exit(f"Configuration error: {error}")
app.synth()
