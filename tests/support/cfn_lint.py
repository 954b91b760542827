"""cfn-lint, as `make cfn-lint` runs it: the venv's own binary with the project's .cfnlintrc."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.localcloud.paths import REPO_ROOT


def cfn_lint(templates: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    """Run cfn-lint over ``templates`` from the repository root; exit 0 = clean (warnings give 4, errors 2)."""
    return finish(start_cfn_lint(templates))


def start_cfn_lint(templates: Sequence[str | Path]) -> subprocess.Popen[str]:
    """cfn-lint over ``templates``, started in the background (``finish`` waits for it): it uses another CPU while
    the test process goes on with other tests."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, templates)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a cfn-lint that ``start_cfn_lint`` started; its exit code and output."""
    stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
