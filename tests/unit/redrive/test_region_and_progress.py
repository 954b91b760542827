"""sqs-redrive's region order and its progress bar, without AWS."""

from __future__ import annotations

import io

import pytest

from sqs_decoupling.redrive.cli import REGION_ENV
from sqs_decoupling.redrive.progress import ProgressBar
from sqs_decoupling.regions.resolution import RegionNotFoundError, resolve_region

URL = "https://sqs.eu-west-3.amazonaws.com/123456789012/jobs-dlq"


@pytest.mark.parametrize(
    ("flag", "environ", "url", "expected"),
    [
        ("ap-south-1", {"SQS_REDRIVE_REGION": "us-west-2", "AWS_REGION": "us-east-2"}, URL, "ap-south-1"),
        (None, {"SQS_REDRIVE_REGION": "us-west-2", "AWS_REGION": "us-east-2"}, URL, "us-west-2"),
        (None, {"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "eu-north-1"}, URL, "us-east-2"),
        (None, {"AWS_DEFAULT_REGION": "eu-north-1"}, URL, "eu-north-1"),
        (None, {}, URL, "eu-west-3"),
        (None, {}, "https://eu-central-1.queue.amazonaws.com/123456789012/jobs-dlq", "eu-central-1"),
        (None, {}, "http://localhost:4566/123456789012/jobs-dlq", None),
        (None, {}, None, None),
    ],
)
def test_the_region_is_the_first_found_flag_then_variables_then_the_queue_url(
    flag: str | None, environ: dict[str, str], url: str | None, expected: str | None
) -> None:
    # GIVEN a --region flag, variables and a queue URL (some missing), and no region in an AWS profile
    # WHEN sqs-redrive's region is resolved
    def resolve() -> str:
        return resolve_region(flag, tool_env=REGION_ENV, environ=environ, queue_url=url, configured=lambda: None)

    # THEN the first one present wins, in the order every CLI of the project uses; none is a one-line error
    if expected is None:
        with pytest.raises(RegionNotFoundError, match="pass --region, or set SQS_REDRIVE_REGION, AWS_REGION"):
            resolve()
    else:
        assert resolve() == expected


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place() -> None:
    # GIVEN a terminal WHEN a move progresses from 0 to 40 of 40 and finishes
    terminal = _Terminal()
    bar = ProgressBar(terminal)
    for done in (0, 10, 20, 40):
        bar.update(done, 40)
    bar.finish()
    # THEN each update rewrites the same line (carriage return), and one newline ends it
    frames = terminal.getvalue().split("\r")[1:]
    assert frames[1] == "[#######.......................] 10/40 moved (25%)"
    assert frames[-1] == "[##############################] 40/40 moved (100%)\n"
    assert terminal.getvalue().count("\n") == 1


def test_elsewhere_the_bar_prints_a_line_only_when_it_changes() -> None:
    # GIVEN a log file WHEN 100 messages move one at a time, then the total is reached
    log = io.StringIO()
    bar = ProgressBar(log)
    for done in range(101):
        bar.update(done, 100)
    # THEN one line per cell of the bar (31: empty, then 30 cells), the last at 100%
    lines = log.getvalue().splitlines()
    assert len(lines) == 31
    assert lines[-1].endswith("100/100 moved (100%)")


def test_a_move_task_that_has_not_counted_yet_shows_an_unknown_total() -> None:
    assert ProgressBar(io.StringIO()).render(0, None) == f"[{'?' * 30}] 0 moved"
