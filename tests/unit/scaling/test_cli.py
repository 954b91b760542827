"""python -m tools.scaling refuses bad numbers before any synthesis or simulation, and writes only to build/ unless
told."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tools.scaling.__main__ as cli
from tools.localcloud.paths import REPO_ROOT

BAD = [
    (["--job-seconds", "-10"], "--job-seconds"),
    (["--job-seconds", "nan"], "--job-seconds"),
    (["--job-seconds", "inf"], "--job-seconds"),
    (["--startup-seconds", "-100"], "--startup-seconds"),
    (["--startup-seconds", "nan"], "--startup-seconds"),
    (["--drain-minutes", "-5"], "--drain-minutes"),
    (["--lambda-job-seconds", "-1"], "--lambda-job-seconds"),
    (["--lambda-job-seconds", "0"], "--lambda-job-seconds"),
    (["--videos-per-day", "inf"], "--videos-per-day"),
    (["--videos-per-day", "NaN"], "--videos-per-day"),
    (["--burst", "1.5"], "--burst"),
    (["--minutes", "0"], "--minutes"),
    (["--metric-delay-seconds", "-1"], "--metric-delay-seconds"),
    (["--warm-start-seconds", "inf"], "--warm-start-seconds"),
    (["--fail-fraction", "1.5"], "--fail-fraction"),
    (["--lambda-provisioned", "1,5"], "--lambda-provisioned"),
    (["--lambda-provisioned", "2,3000"], "--lambda-provisioned"),
    (["--lambda-provisioned", "many"], "--lambda-provisioned"),
    (["-c", "worker_instance_type=t9.nano"], "worker_instance_type"),
]


@pytest.mark.parametrize(("args", "named"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_number_is_one_line_and_exit_2_before_any_synthesis(
    args: list[str], named: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN no cloud assembly anywhere (synthesizing one would be the next step) and a bad value
    monkeypatch.setattr(cli, "assemblies", lambda *a: pytest.fail("synthesis reached with a bad argument"))
    # WHEN the CLI runs
    try:
        code = cli.main([*args, "--output", str(tmp_path / "s.json"), "--no-chart"])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    # THEN exit 2, one line on stderr naming the flag, nothing written
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and named in err and "Traceback" not in err
    assert not (tmp_path / "s.json").exists()


def test_a_csv_count_of_50_7_is_refused_not_truncated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "assemblies", lambda *a: pytest.fail("synthesis reached with a bad arrivals file"))
    for bad in ("50.7", "inf", "-3"):
        arrivals = tmp_path / "arrivals.csv"
        arrivals.write_text(f"minute,arrivals\n0,5\n1,{bad}\n")
        assert cli.main(["--arrivals-csv", str(arrivals)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"line 3: arrivals must be a whole number >= 0, got '{bad}'" in err


def test_results_go_to_build_unless_update_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the run itself replaced (this test is about where files go)
    written: list[Path] = []

    class Done:
        def table(self) -> str:
            return "table"

        def write_json(self, dest: Path) -> Path:
            written.append(dest)
            return dest

    monkeypatch.setattr(cli, "run", lambda args: Done())
    monkeypatch.setattr(cli, "write_chart", lambda result, dest: written.append(dest) or dest)
    # WHEN run with defaults THEN build/, never the committed bench/results/
    assert cli.main([]) == 0
    assert written == [REPO_ROOT / "build" / "scaling.json", REPO_ROOT / "build" / "scaling.png"]
    written.clear()
    assert cli.main(["--update-bench"]) == 0
    assert written == [
        REPO_ROOT / "bench" / "results" / "scaling.json",
        REPO_ROOT / "bench" / "results" / "scaling.png",
    ]


def test_help_prints_help_and_does_nothing_else() -> None:
    # GIVEN a fresh interpreter (as `make scaling ARGS=--help` runs it)
    before = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    done = subprocess.run(
        [sys.executable, "-m", "tools.scaling", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    after = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    # THEN help, the calibration flags and the exit codes are printed, and the tree is as it was
    assert done.returncode == 0 and "--startup-seconds" in done.stdout and "exit codes" in done.stdout
    assert "--metric-delay-seconds" in done.stdout and "--update-bench" in done.stdout
    assert before == after


def test_the_simulator_never_imports_the_cost_model() -> None:
    # GIVEN every module of tools.scaling, its CLI included, imported in a fresh interpreter
    code = (
        "import importlib, json, pkgutil, sys, tools.scaling; "
        "[importlib.import_module(m.name) for m in pkgutil.iter_modules(tools.scaling.__path__, 'tools.scaling.')]; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    # THEN the lower layer loaded nothing of the layer above it (tools.cost imports tools.scaling, not the reverse)
    loaded = json.loads(out.stdout)
    assert "tools.scaling.__main__" in loaded
    assert [m for m in loaded if m == "tools.cost" or m.startswith("tools.cost.")] == []
