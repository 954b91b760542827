"""cfn-lint, as `make cfn-lint` runs it: the venv's own binary with the project's .cfnlintrc."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.localcloud.paths import REPO_ROOT


def cfn_lint(templates: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    """Run cfn-lint over ``templates`` from the repository root; exit 0 = clean (warnings give 4, errors 2)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, templates)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
