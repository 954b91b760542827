"""``python -m tools.demo`` (``make demo``): the command line. Parsing imports nothing heavy, so ``--help`` and a bad
argument answer at once and start nothing (no moto server, no CDK CLI)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tools.demo.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_STEP_FAILED, EXIT_USAGE
from tools.demo.videos import DEFAULT_VIDEOS, MAX_VIDEOS

DESCRIPTION = """\
Deploy every stack into a local moto server with the pinned CDK CLI, run sample videos through the Lambda path
(the real handler) and the EC2 worker path (the real worker), print a summary, then destroy the stacks and stop
the server. No AWS account, no Docker.
"""
EPILOG = f"""\
exit codes:
  {EXIT_OK}    the demo finished; the stacks were destroyed and the server stopped (with --keep: after Ctrl-C)
  {EXIT_STEP_FAILED}    a step failed: stderr names the step and the reason; whatever was deployed was destroyed
  {EXIT_USAGE}    bad arguments
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C or SIGTERM) before the summary; whatever was deployed was destroyed

The moto server lives inside this process, so nothing outlives it: --keep holds the stacks up until you press
Ctrl-C, then destroys them. The CDK CLI's log and the consumers' logs are in build/demo/; the outputs are copied to
demo-output/.
"""


def video_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number 1..{MAX_VIDEOS}, got {text!r}") from None
    if not 1 <= count <= MAX_VIDEOS:
        raise argparse.ArgumentTypeError(f"expected 1..{MAX_VIDEOS}, got {count}")
    return count


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(
        prog="python -m tools.demo",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument(
        "--keep",
        action="store_true",
        help="after the summary, leave the stacks up and print AWS CLI commands to look at them on the moto "
        "server; Ctrl-C then destroys them and stops the server",
    )
    command.add_argument(
        "--videos",
        type=video_count,
        default=DEFAULT_VIDEOS,
        metavar="N",
        help=f"sample clips to generate and upload to each path, 1..{MAX_VIDEOS} (default {DEFAULT_VIDEOS}); a text "
        "file and an empty object are always added",
    )
    return command


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from tools.demo.run import Demo  # the heavy part: boto3, moto, the handler

    return Demo(keep=args.keep, videos=args.videos).run()
