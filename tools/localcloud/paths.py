"""Where the repository is, for the tools that run from a checkout (demo, tests, benchmarks, ``make scaling``)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository's root: the folder with cdk.json, app.py and node_modules/."""
