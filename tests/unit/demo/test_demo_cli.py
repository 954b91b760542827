"""`python -m tools.demo`'s command line: help and bad arguments answer at once and start nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tools.demo.cli import main
from tools.demo.exits import EXIT_USAGE
from tools.demo.videos import CLIPS, MAX_VIDEOS, clip_specs
from tools.localcloud.paths import REPO_ROOT

# Runs `python -m tools.demo <args>` as a user would, then reports which heavy modules the run imported.
PROBE = """
import runpy, sys
sys.argv = ["python -m tools.demo", *sys.argv[1:]]
try:
    runpy.run_module("tools.demo", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    print("EXIT", stop.code)
print("IMPORTED", sorted(m for m in ("boto3", "moto", "aws_cdk", "tools.demo.run", "tools.localcloud.server") if m in
sys.modules))
"""


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def test_help_prints_usage_options_and_exit_codes_and_starts_nothing() -> None:
    # GIVEN the demo's command line WHEN it is asked for --help
    result = run_demo("--help")
    # THEN it prints the usage, both options and the exit codes, exits 0, and never loaded boto3, moto or the CDK
    assert result.stdout.startswith("usage: python -m tools.demo [-h] [--keep] [--videos N]")
    for text in ("--keep", "Ctrl-C", "--videos N", "exit codes:", "  130  interrupted"):
        assert text in result.stdout
    assert "EXIT 0" in result.stdout
    assert "IMPORTED []" in result.stdout
    assert result.stderr == ""


def test_a_bad_video_count_is_one_line_on_stderr_with_the_usage_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a video count outside 1..MAX_VIDEOS WHEN the demo is started with it
    with pytest.raises(SystemExit) as stop:
        main(["--videos", "0"])
    # THEN it stops before doing anything, with exit code 2 and an error that names the option and the range
    assert stop.value.code == EXIT_USAGE == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"argument --videos: expected 1..{MAX_VIDEOS}, got 0" in err
    assert "Traceback" not in err


def test_a_video_count_that_is_not_a_number_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--videos", "many"])
    assert f"expected a whole number 1..{MAX_VIDEOS}, got 'many'" in capsys.readouterr().err


def test_the_clips_are_the_named_samples_first_then_plain_numbered_ones() -> None:
    # GIVEN counts below, at and above the named samples WHEN the clips are chosen
    # THEN the awkward names (spaces, accents, '+') come first, and more clips continue the numbering
    assert clip_specs(1) == [CLIPS[0]]
    assert clip_specs(len(CLIPS)) == list(CLIPS)
    more = clip_specs(len(CLIPS) + 2)
    assert more[: len(CLIPS)] == list(CLIPS)
    assert [key for key, _, _ in more[len(CLIPS) :]] == ["clip-06.mp4", "clip-07.mp4"]
    assert len({key for key, _, _ in clip_specs(MAX_VIDEOS)}) == MAX_VIDEOS


@pytest.mark.parametrize("count", [0, MAX_VIDEOS + 1])
def test_a_clip_count_out_of_range_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match=f"count must be 1..{MAX_VIDEOS}, got {count}"):
        clip_specs(count)
