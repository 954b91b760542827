"""The documentation names only `make` targets and CLI flags that exist, links only to files that exist, and the
README stays a front door.

The documentation is README.md, the pages of docs/ and every README.md under sqs_decoupling/ and tools/
(``tests.support.docs.documents``). It reads what each says when the test runs (fenced code blocks and inline code),
finds each `make ...`
command and each command of the project's CLIs (`sqs-submit`, `sqs-redrive`, `video-worker`,
`python -m tools.demo|tools.cost|tools.scaling|sqs_decoupling.producer|...`,
and `make <target> ARGS="..."`, whose CLI is the one the Makefile recipe hands `$(ARGS)` to), and checks the target
against the Makefile and every flag against that CLI's `--help`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import runpy
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from tests.conftest import SynthesizedApp
from tests.support.docs import broken_links, documents, relative, section
from tools.localcloud.paths import REPO_ROOT

BIN = Path(sys.executable).parent
# What runs each CLI the documentation may name, keyed by the name a reader types.
PRODUCER, REDRIVE, WORKER = "sqs_decoupling.producer", "sqs_decoupling.redrive", "sqs_decoupling.worker_fleet.worker"
CONSOLE_SCRIPTS = {"sqs-submit": PRODUCER, "sqs-redrive": REDRIVE, "video-worker": WORKER}
MODULES = {"tools.demo", "tools.cost", "tools.scaling", "tools.copying", WORKER, PRODUCER, REDRIVE}
# Other tools' commands: a bare flag right after one of them is that tool's, not ours.
OTHER_TOOLS = ("pip", "uv", "npx", "npm", "cdk", "aws", "cfn-lint", "ruff", "mypy", "pytest", "git", "jq")
SCRIPT = "script:"
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")


@dataclass(frozen=True)
class Mention:
    """One thing a document names: a make target, or a flag of one of the project's CLIs."""

    line: int
    text: str
    target: str = ""
    cli: str = ""
    """A module run with `python -m` (`demo`, `cost`, ...) or, for bare flags, `*` (any of the project's CLIs)."""
    subcommand: str = ""
    flag: str = ""


def code_snippets(markdown: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each command in fenced blocks (continuation lines joined) and each inline code span."""
    fenced = False
    pending: tuple[int, str] | None = None
    for number, line in enumerate(markdown.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            start, text = pending if pending else (number, "")
            text += line.rstrip("\\").strip() + " "
            pending = (start, text) if line.rstrip().endswith("\\") else None
            if pending is None:
                yield start, text.strip()
        else:
            for span in re.findall(r"`([^`]+)`", line):
                yield number, span


def _tokens(command: str) -> list[str]:
    command = re.split(r"\s#\s|\s#$", command)[0]
    try:
        return shlex.split(command)
    except ValueError:  # an unbalanced quote in prose
        return command.split()


def mentions(markdown: str, makefile: str) -> Iterator[Mention]:
    """Every make target and every project CLI flag that ``markdown`` names in code.

    A bare flag (`--x` alone in inline code) belongs to the last command named before it in the same paragraph or
    list item: one of ours (checked against that CLI), another tool's (not checked), or none (checked against all of
    the project's CLIs).
    """
    lines = markdown.splitlines()
    args_cli = make_args_clis(makefile)
    block, owner = -1, "*"
    for number, snippet in code_snippets(markdown):
        if _block_start(lines, number - 1) != block:
            block, owner = _block_start(lines, number - 1), "*"
        for command in re.split(r"&&|\|\||;|\|", snippet):
            tokens = _tokens(command)
            while tokens and (re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", tokens[0]) or tokens[0] in ("time", "env")):
                tokens.pop(0)  # `VAR=value make ...`, `time make demo`
            if not tokens:
                continue
            program = Path(tokens[0]).name
            if program == "make":
                yield from _make_mentions(number, snippet, tokens[1:], args_cli)
                owner = next((args_cli[t] for t in tokens[1:] if t in args_cli), owner)
            elif program in CONSOLE_SCRIPTS:
                owner = CONSOLE_SCRIPTS[program]
                yield from _cli_mentions(number, snippet, owner, tokens[1:])
            elif re.fullmatch(r"python(3(\.\d+)?)?", program) and tokens[1:2] == ["-m"] and tokens[2:3]:
                owner = tokens[2] if tokens[2] in MODULES else ""
                if owner:
                    yield from _cli_mentions(number, snippet, owner, tokens[3:])
            elif re.fullmatch(r"python(3(\.\d+)?)?", program) and tokens[1:2] and tokens[1].endswith(".py"):
                owner = SCRIPT + tokens[1]  # one of the project's scripts (bench/...): checked against its --help
                yield from _cli_mentions(number, snippet, owner, tokens[2:])
            elif program in OTHER_TOOLS:
                owner = ""
            elif FLAG.fullmatch(tokens[0]) and tokens[0].startswith("--") and owner:
                yield Mention(number, snippet, cli=owner, flag=tokens[0])


def _block_start(lines: list[str], index: int) -> int:
    """Where the paragraph, list item or fenced block that holds ``lines[index]`` starts."""
    item = re.compile(r"\s*([-*]|\d+\.)\s")
    start = index
    while start > 0 and lines[start - 1].strip() and not lines[start].lstrip().startswith("```"):
        if item.match(lines[start]) or lines[start - 1].lstrip().startswith("```"):
            break
        start -= 1
    return start


def _make_mentions(number: int, snippet: str, words: list[str], args_cli: dict[str, str]) -> Iterator[Mention]:
    targets = [w for w in words if not w.startswith("-") and "=" not in w and re.fullmatch(r"[a-z][\w-]*", w)]
    for target in targets:
        yield Mention(number, snippet, target=target)
    for word in words:
        if word.startswith("ARGS="):
            for target in targets:
                if target in args_cli:
                    yield from _cli_mentions(number, snippet, args_cli[target], shlex.split(word[5:]))


def _cli_mentions(number: int, snippet: str, cli: str, words: list[str]) -> Iterator[Mention]:
    subcommand = words[0] if words and re.fullmatch(r"[a-z][a-z-]*", words[0]) else ""
    for word in words:
        match = FLAG.fullmatch(word.split("=", 1)[0])
        if match:
            yield Mention(number, snippet, cli=cli, subcommand=subcommand, flag=match.group(1))


def make_targets(makefile: str) -> set[str]:
    """Every target the Makefile defines (rule lines `a b: ...`, not `VAR := ...`)."""
    targets: set[str] = set()
    for line in makefile.splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-/ $()]+?)\s*::?(?!=)", line)
        if match and not line.startswith("\t"):
            targets.update(match.group(1).split())
    return targets


def make_args_clis(makefile: str) -> dict[str, str]:
    """target -> the module its recipe runs with `python -m <module> ... $(ARGS)`."""
    clis: dict[str, str] = {}
    target = ""
    for line in makefile.splitlines():
        rule = re.match(r"^([a-z][\w-]*)\s*:(?!=)", line)
        if rule:
            target = rule.group(1)
        module = re.search(r"python3? -m ([\w.]+).*\$\(ARGS\)", line)
        if line.startswith("\t") and module and target:
            clis[target] = module.group(1)
    return clis


@functools.cache
def help_text(cli: str, subcommand: str = "") -> str:
    """``python -m <cli> [subcommand] --help`` (or ``python <script> --help``): what the CLI says it accepts.

    Run here, as ``python -m`` runs it (the module's ``__main__`` with that argv), not in a new interpreter: the
    same argparse code prints the same help, without importing boto3 and the rest again for each CLI."""
    script = cli.removeprefix(SCRIPT) if cli.startswith(SCRIPT) else ""
    argv = [script or cli, *([subcommand] if subcommand else []), "--help"]
    out = io.StringIO()
    # A test may have imported the CLI's __main__ module already: run it afresh, as `python -m` does, and leave the
    # imported one in place afterwards.
    # (a CLI that is a module, not a package, runs as itself: the same applies to it)
    main_name = f"{cli}.__main__" if not script and (REPO_ROOT / cli.replace(".", "/")).is_dir() else cli
    imported_main = sys.modules.pop(main_name, None)
    with (
        mock.patch.object(sys, "argv", argv),
        contextlib.redirect_stdout(out),
        pytest.raises(SystemExit) as exited,
    ):
        if script:
            runpy.run_path(str(REPO_ROOT / script), run_name="__main__")
        else:
            runpy.run_module(cli, run_name="__main__", alter_sys=True)
    if imported_main is not None:
        sys.modules[main_name] = imported_main
    assert exited.value.code in (0, None), f"{' '.join(argv)} exited with {exited.value.code}"
    return out.getvalue()


def subcommands(cli: str) -> set[str]:
    usage = re.search(r"\{([\w,-]+)\}", help_text(cli))
    return set(usage.group(1).split(",")) if usage else set()


def flags_in_help(text: str) -> set[str]:
    """The flags argparse lists: the usage lines and the option lines (not words in descriptions)."""
    flags: set[str] = set()
    in_usage = False
    for line in text.splitlines():
        in_usage = line.startswith("usage:") or (in_usage and line.startswith(" ") and bool(line.strip()))
        if in_usage:
            flags.update(FLAG.findall(line))
        elif line.lstrip().startswith("-"):
            flags.update(FLAG.findall(re.split(r"\s{2,}", line.strip())[0]))
    return flags


def cli_flags(cli: str, subcommand: str) -> set[str]:
    if subcommand in subcommands(cli):
        return flags_in_help(help_text(cli, subcommand)) | flags_in_help(help_text(cli))
    return flags_in_help(help_text(cli))


def known_flags(mention: Mention) -> set[str]:
    """The flags the CLI a mention belongs to accepts (for a bare flag: any of the project's CLIs)."""
    return all_project_flags() if mention.cli == "*" else cli_flags(mention.cli, mention.subcommand)


def all_project_flags() -> set[str]:
    flags: set[str] = set()
    for cli in sorted(MODULES):
        flags |= cli_flags(cli, "")
        for sub in sorted(subcommands(cli)):
            flags |= cli_flags(cli, sub)
    return flags


MAKEFILE = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
README_MAX_LINES = 250
DOCUMENTS = {relative(path): path.read_text(encoding="utf-8") for path in documents()}
# (document, mention) for every make target and CLI flag the documentation names.
MENTIONS = [(name, mention) for name, text in DOCUMENTS.items() for mention in mentions(text, MAKEFILE)]


def _id(named: tuple[str, Mention]) -> str:
    name, mention = named
    return f"{name}:L{mention.line}:" + (
        f"make {mention.target}" if mention.target else f"{mention.cli} {mention.flag}"
    )


@pytest.mark.parametrize("named", [(n, m) for n, m in MENTIONS if m.target], ids=_id)
def test_every_make_target_the_documentation_names_exists(named: tuple[str, Mention]) -> None:
    # GIVEN a `make <target>` in the code of a document; WHEN the Makefile's rules are read
    # THEN the target is one of them
    name, mention = named
    assert mention.target in make_targets(MAKEFILE), (
        f"{name} line {mention.line} names `make {mention.target}` ({mention.text!r}); the Makefile has no such target"
    )


@pytest.mark.parametrize("named", [(n, m) for n, m in MENTIONS if m.flag], ids=_id)
def test_every_cli_flag_the_documentation_names_exists(named: tuple[str, Mention]) -> None:
    # GIVEN a flag in a document's command of one of the project's CLIs (or alone, as one of theirs)
    # WHEN that CLI's --help is read
    # THEN it lists the flag
    name, mention = named
    known = known_flags(mention)
    where = "any of the project's CLIs" if mention.cli == "*" else f"`python -m {mention.cli} --help`"
    assert mention.flag in known, (
        f"{name} line {mention.line} names {mention.flag} ({mention.text!r}); {where} does not list it"
    )


def test_the_documentation_names_the_main_targets_and_clis() -> None:
    # GIVEN the documentation WHEN its code is read THEN the checks above have something to check: the README's two
    # commands and `make synth`, and flags of the producer, the worker, the demo and the redrive CLI (a parser that
    # finds nothing would pass vacuously)
    readme_targets = {m.target for n, m in MENTIONS if n == "README.md" and m.target}
    clis = {m.cli for _, m in MENTIONS if m.flag}
    assert {"demo", "test", "synth"} <= readme_targets
    assert {PRODUCER, WORKER, REDRIVE, "tools.demo"} <= clis
    # AND it reads every kind of document: the README, the pages of docs/ and the component READMEs
    assert {"README.md", "docs/testing.md", "sqs_decoupling/queue/README.md", "tools/README.md"} <= set(DOCUMENTS)


def test_the_readme_is_a_front_door_of_at_most_250_lines() -> None:
    # GIVEN the README WHEN its lines are counted THEN it stays short: the rest lives in docs/ and the components
    lines = len(README.splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, more than {README_MAX_LINES}: move a topic to a page of docs/"
    )


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_relative_link_points_to_a_file_and_heading_that_exist(name: str) -> None:
    # GIVEN a document of the documentation WHEN its relative links are followed
    # THEN each names a file that exists and, with an #anchor, a heading of that file
    path = REPO_ROOT / name
    broken = [
        f"{name} line {line}: {target}: {problem}" for line, target, problem in broken_links(path, DOCUMENTS[name])
    ]
    assert broken == []


def test_the_link_check_reports_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    # GIVEN a document linking to a page that exists, one that does not, and a heading that does not exist
    (tmp_path / "page.md").write_text("# Page\n\n## Set-up: two commands (`make demo`)\n")
    document = tmp_path / "README.md"
    text = (
        "See [the page](page.md#set-up-two-commands-make-demo), [the site](https://example.com/x.md) and\n"
        "[gone](gone.md), [no such heading](page.md#deploy).\n\n```\n[in code](ignored.md)\n```\n"
    )
    # WHEN its links are checked
    found = [(line, target) for line, target, _ in broken_links(document, text)]
    # THEN the missing file and the missing heading are reported, on their line; the rest is not
    assert found == [(2, "gone.md"), (2, "page.md#deploy")]


def test_the_check_reports_an_unknown_target_and_an_unknown_flag() -> None:
    # GIVEN a README that names a target the Makefile lacks and flags the CLIs lack
    readme = (
        "Run `make deploy-everything`, then:\n\n```bash\nvideo-worker --queue-url q \\\n    --turbo\n```\n"
        '`make demo ARGS="--keep"`, or `python -m tools.demo` with `--forever`.\n\n'
        "The worker also takes `--warp-speed`.\n\n"
        "Bundling runs `pip install` with `--platform manylinux2014_aarch64`.\n"
    )
    # WHEN the checks read it
    found = list(mentions(readme, MAKEFILE))
    missing_targets = {m.target for m in found if m.target and m.target not in make_targets(MAKEFILE)}
    unknown_flags = {(m.cli, m.flag) for m in found if m.flag and m.flag not in known_flags(m)}
    # THEN each unknown name is reported against its CLI, the known ones are not, and pip's flag is not ours
    assert missing_targets == {"deploy-everything"}
    assert unknown_flags == {(WORKER, "--turbo"), ("tools.demo", "--forever"), ("*", "--warp-speed")}
    assert ("tools.demo", "--keep") in {(m.cli, m.flag) for m in found}


@pytest.mark.slow
@pytest.mark.gate
def test_the_validation_report_example_is_what_the_default_synthesis_reports(synthesized: SynthesizedApp) -> None:
    # GIVEN the documentation's example of the report summary (one line per rule pack, as its jq command prints them)
    where, text = section("Validation reports")
    example = re.search(r"```text\n(.*?)```", text, re.S)
    assert example, f"the Validation reports section of {relative(where)} has no ```text example of the summary"
    # WHEN the default app's validation report is summarized the same way
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    summary = [
        f"{p['pluginName']}: {p['conclusion']}, {len(p.get('violations', []))} open, "
        f"{len(p.get('suppressedViolations', []))} acknowledged"
        for p in report["pluginReports"]
    ]
    # THEN the example names every rule pack, with its counts
    assert example.group(1).strip().splitlines() == summary
    packs = re.search(r"\(`pluginReports`: (.*?)\)", " ".join(text.split()))
    assert packs and re.findall(r"`([\w-]+)`", packs.group(1)) == [p["pluginName"] for p in report["pluginReports"]]


def test_the_busy_benchmark_figures_in_the_docs_are_the_committed_run() -> None:
    # GIVEN the committed run of bench/busy_bench.py and the page that quotes it
    run = json.loads((REPO_ROOT / "bench" / "results" / "busy.json").read_text())
    text = " ".join((REPO_ROOT / "docs" / "testing.md").read_text().split())
    worker = next(name for name in run["median_seconds"] if name.startswith("worker"))
    # THEN the page gives both ratios, the worker's median, the best bare configuration's, and the verdict, as run
    assert f"{run['worker_throughput_vs_best_bare']}x the best bare configuration as measured" in text
    assert f"{run['worker_throughput_vs_best_bare_without_moto_cpu']}x with moto's CPU taken out" in text
    assert f"worker median {run['median_seconds'][worker]:.2f} s" in text
    best = run["best_bare"].removeprefix("bare ").replace(" x ", "x")
    assert f"best bare {best} {run['median_seconds'][run['best_bare']]:.2f} s" in text
    verdict = "the goal (>= 0.95x) is met" if run["goal_met"] else "the goal (>= 0.95x) is not met"
    assert verdict in text


def test_the_suite_timings_in_the_docs_are_the_committed_run() -> None:
    # GIVEN the committed run of bench/suite_bench.py and the table of docs/testing.md that quotes it
    run = json.loads((REPO_ROOT / "bench" / "results" / "suite.json").read_text())
    rows = {
        "`time make test`": run["make test"],
        "`time make test-fast`": run["make test-fast"],
        "`rm -rf cdk.out && time npx cdk synth --quiet`": run["npx cdk synth --quiet (cdk.out removed first)"],
    }
    table = [line for line in (REPO_ROOT / "docs" / "testing.md").read_text().splitlines() if line.startswith("| `")]
    # THEN each command's row gives the run's range of wall times
    for command, figures in rows.items():
        (row,) = [line for line in table if line.startswith(f"| {command} |")]
        assert f"| {figures['min_wall_s']:.1f}-{figures['max_wall_s']:.1f} s |" in row, row
