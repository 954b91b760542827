"""`python -m tools.cost` and the bench scripts as a user runs them: bad input refused before any work, output kept out
of
the git tree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tools.cost.__main__ as cli
from tests.conftest import SynthesizedApp

REPO = Path(__file__).resolve().parents[3]
WORKLOAD = ["--videos-per-day", "1000", "--size-mb", "50", "--duration-s", "60"]
BENCH_SCRIPTS = sorted(p.name for p in (REPO / "bench").glob("*_bench.py"))


def _with(flag: str, value: str) -> list[str]:
    argv = list(WORKLOAD)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    return argv


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Synthesis, the benchmark files and the simulation must not be reached: each fails the test if called."""

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("reached work that validation should have prevented")

    for name in ("assemblies", "ensure_assembly", "estimate_monthly_cost"):
        monkeypatch.setattr(cli, name, forbidden)
    monkeypatch.setattr(cli.Measured, "read", forbidden)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--videos-per-day", "nan"),
        ("--videos-per-day", "inf"),
        ("--videos-per-day", "-3"),
        ("--videos-per-day", "0"),
        ("--videos-per-day", "1e9"),
        ("--size-mb", "-1"),
        ("--size-mb", "infinity"),
        ("--duration-s", "0"),
        ("--duration-s", "86400"),
        ("--storage-month", "0"),
        ("--storage-month", "1.5"),
        ("--storage-month", "nan"),
        ("--lambda-record-seconds", "-1"),
        ("--lambda-record-seconds", "0"),
        ("--lambda-record-seconds", "NaN"),
        ("--fleet-job-seconds", "inf"),
        ("--fleet-job-seconds", "ten"),
    ],
)
def test_every_numeric_flag_is_checked_before_any_work(
    flag: str, value: str, no_work: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a value out of range or not finite WHEN the CLI starts
    with pytest.raises(SystemExit) as exit_:
        cli.main(_with(flag, value))
    # THEN exit code 2 and one line that names the flag and the allowed range, before any synthesis or simulation
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{flag} must be" in err and (" in (" in err or " in [" in err)


@pytest.mark.parametrize(
    ("context", "expected"),
    [("worker_instance_type", "-c takes KEY=VALUE"), ("worker_instance_type=x9.huge", "no price for instance type")],
)
def test_bad_context_is_refused_before_synthesis(
    context: str, expected: str, no_work: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*WORKLOAD, "-c", context]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


def test_an_unpriced_instance_type_in_the_template_is_exit_code_1(
    synthesized: SynthesizedApp, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assembly = tmp_path / "cdk.out"
    shutil.copytree(synthesized.outdir, assembly, ignore=shutil.ignore_patterns("asset.*"))
    fleet_template = assembly / "WorkerFleetStack.template.json"
    fleet_template.write_text(fleet_template.read_text().replace('"c7g.large"', '"x9.huge"'))
    code = cli.main([*WORKLOAD, "--cdk-out", str(assembly), "--no-chart", "--output", str(tmp_path / "c.json")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "no price for instance type 'x9.huge'; priced types:" in err
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "exit codes:" in capsys.readouterr().out


def test_the_json_says_per_path_whether_it_keeps_up(synthesized: SynthesizedApp, tmp_path: Path) -> None:
    out = tmp_path / "cost.json"
    argv = ["--videos-per-day", "1000000", "--size-mb", "50", "--duration-s", "60"]
    assert cli.main([*argv, "--cdk-out", str(synthesized.outdir), "--no-chart", "--output", str(out)]) == 0
    paths = json.loads(out.read_text())["paths"]
    for figures in paths.values():
        assert {"monthly_usd", "keeps_up", "unmet_jobs", "max_age_seconds", "lines"} <= figures.keys()
        fields = {"item", "quantity", "unit_price_usd", "usd", "source", "region"}
        assert all(fields <= set(line) for line in figures["lines"])
    # the default MaximumConcurrency of 10 cannot serve a million a day
    assert paths["lambda"]["keeps_up"] is False and paths["lambda"]["unmet_jobs"] > 100_000


def _tree() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.slow  # renders the chart (matplotlib) and starts five interpreters
def test_what_a_user_runs_leaves_the_tree_as_it_was(
    synthesized: SynthesizedApp, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree()
    # WHEN `make cost` runs with its defaults (the JSON and the chart go to build/)
    assert cli.main([*WORKLOAD, "--cdk-out", str(synthesized.outdir)]) == 0
    written = capsys.readouterr().out
    assert f"written: {REPO / 'build' / 'cost.json'}" in written and f"chart: {REPO / 'build' / 'cost.png'}" in written
    # AND every benchmark's --help
    for script in BENCH_SCRIPTS:
        done = subprocess.run(
            [sys.executable, f"bench/{script}", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0 and "--update-bench" in done.stdout, (script, done.stderr)
    # THEN git sees no change
    assert _tree() == before


def test_the_bench_scripts_share_one_results_rule() -> None:
    # GIVEN the shared module, imported as the scripts import it (the repository root on sys.path)
    from bench import bench_cli

    # THEN build/ by default, bench/results/ only with --update-bench, and --output wins over both
    assert bench_cli.parse("doc", "x.json", argv=[])[1] == REPO / "build" / "x.json"
    assert bench_cli.parse("doc", "x.json", argv=["--update-bench"])[1] == REPO / "bench" / "results" / "x.json"
    assert bench_cli.parse("doc", "x.json", argv=["--output", "/tmp/y.json"])[1] == Path("/tmp/y.json")
    # AND every script uses it
    for script in BENCH_SCRIPTS:
        text = (REPO / "bench" / script).read_text()
        assert "bench_cli.parse(" in text and "bench_cli.write_result(" in text, script
        assert 'bench" / "results"' not in text, script
