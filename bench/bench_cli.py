"""The benchmarks' shared command line: `--help` that only prints help, and results that stay out of the git tree.

Every script under bench/ parses its arguments here before it imports anything heavy or measures anything, and
writes its JSON through ``write_result``: to ``build/<name>`` by default, to ``bench/results/<name>`` (the committed
figures that the documentation, the scaling simulator and the cost model read) only with ``--update-bench``.

A script stays runnable on its own (``python bench/x.py``): it puts the repository root on ``sys.path`` and imports
``from bench import bench_cli`` (bench/ is a namespace package), without the project being installed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parent.parent
COMMITTED = REPO / "bench" / "results"
SCRATCH = REPO / "build"


class BenchParser(argparse.ArgumentParser):
    """argparse with one-line errors (exit code 2, no usage dump) and ``--update-bench`` / ``--output``."""

    def __init__(self, doc: str, result_name: str) -> None:
        super().__init__(
            prog=f"python bench/{Path(sys.argv[0]).name}",
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        self.result_name = result_name
        where = self.add_argument_group("where the figures go")
        where.add_argument(
            "--update-bench",
            action="store_true",
            help=f"write bench/results/{result_name} (the committed figures) instead of build/{result_name}",
        )
        where.add_argument("--output", type=Path, help=f"write the figures here instead (default build/{result_name})")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")

    def result_path(self, args: argparse.Namespace) -> Path:
        """Where this run's figures go: --output, else bench/results/ with --update-bench, else build/."""
        if args.output is not None:
            return Path(args.output)
        return (COMMITTED if args.update_bench else SCRATCH) / self.result_name


def bounded(name: str, low: float, high: float, *, integer: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` that accepts a finite number in [low, high] (a whole one with ``integer``)."""

    def parse(text: str) -> float:
        kind = "a whole number" if integer else "a number"
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {kind} in {low:g}..{high:g}, got {text!r}") from None
        if not (math.isfinite(value) and low <= value <= high) or (integer and value != int(value)):
            raise argparse.ArgumentTypeError(f"{name} must be {kind} in {low:g}..{high:g}, got {text!r}")
        return int(value) if integer else value

    return parse


def parse(
    doc: str | None,
    result_name: str,
    configure: Callable[[BenchParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> tuple[argparse.Namespace, Path]:
    """The script's arguments and where its result goes (``--help`` prints and exits here, before any work)."""
    parser = BenchParser(doc or "", result_name)
    if configure is not None:
        configure(parser)
    args = parser.parse_args(argv)
    return args, parser.result_path(args)


def write_result(dest: Path, result: dict[str, Any]) -> Path:
    """``result`` as indented JSON at ``dest`` (directories made); prints where it went."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {dest}")
    return dest
