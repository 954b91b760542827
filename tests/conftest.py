"""Shared fixtures: the app synthesized once per test session, with the context from cdk.json."""

from __future__ import annotations

import os
import sys

# Before jsii starts its Node.js process: this interpreter's bin/ first on PATH, as the Makefile does, so that
# `.venv/bin/pytest` run outside make finds the venv's Node.js (make setup puts one there where the machine's is
# older than 22) and the project's console scripts.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

import atexit
import functools
import gc
import json
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import botocore.client
import botocore.loaders
import botocore.session
import pytest
from botocore.model import ServiceModel

from sqs_decoupling.stacks.names import STACK_NAMES
from tests.support.permissions.calls import Call, stale
from tests.support.permissions.recorder import CALLS_OUT_ENV
from tests.support.schedule import CONFIGURATIONS, MOTO_SERVER, SYNTHESIS, schedule_key
from tools.localcloud.paths import REPO_ROOT

# The CDK (aws_cdk and the app builder: about 1 s of CPU, most of it jsii loading aws-cdk-lib into Node.js) is
# imported by the functions that build an app, not here: every pytest process imports this file, including
# pytest-xdist's controller and processes that run no test of a stack.
if TYPE_CHECKING:
    from aws_cdk import App
    from aws_cdk.assertions import Template

_CALLS_OUT = pytest.StashKey[Path]()

# moto's mock_aws() starts every test with a new boto3 default session, and each new botocore session loads the
# service models (JSON) again: about 40 ms a client, most of an in-process moto test's time. One loader for every
# session of the test run keeps the models it loaded (they are read-only data, the same for every session).
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)  # type: ignore[attr-defined]


# Each new client also built a ServiceModel of its own from those models, and resolved its operations' shapes again
# at their first calls (about 2 ms of CPU a client and its first requests). A ServiceModel is read-only as well (its
# caches fill with the same values for every client), so the clients of one loader share one per service: this is
# botocore's ClientCreator._load_service_model, cached.
@functools.cache
def _shared_service_model(loader: botocore.loaders.Loader, service_name: str, api_version: str | None) -> ServiceModel:
    json_model = loader.load_service_model(service_name, "service-2", api_version=api_version)
    return ServiceModel(json_model, service_name=service_name)


def _load_service_model(self: botocore.client.ClientCreator, service_name: str, api_version: str | None = None) -> Any:
    return _shared_service_model(self._loader, service_name, api_version)


botocore.client.ClientCreator._load_service_model = _load_service_model  # type: ignore[method-assign]


# A pytest-xdist worker process ends without the interpreter's teardown of every module and object it made: about
# 1.2 s at the end of `make test-fast`, where xdist's controller waits for every worker process to end (the end of
# the run, after the last test: 1.8 s before, 0.7 s after). Registered here, before the CDK is imported, this runs
# after the exit handlers registered later (jsii's, which stops its Node.js process); by then the worker has sent
# every result to the controller, which does not read a worker's exit status. Not under coverage measurement: it
# saves its data in an exit handler of its own, registered before this one.
def _end_worker_process() -> None:
    coverage = sys.modules.get("coverage")
    if coverage is not None and coverage.Coverage.current() is not None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if os.environ.get("PYTEST_XDIST_WORKER"):
    atexit.register(_end_worker_process)


def cdk_json_context() -> dict[str, Any]:
    """The context defaults a user gets from cdk.json (feature flags and the project's configuration)."""
    return dict(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])


def make_app(
    overrides: Mapping[str, Any] | None = None,
    *,
    bundle: bool = False,
    outdir: Path | None = None,
    validation: bool = False,
) -> App:
    """An App with cdk.json's context plus ``overrides``; asset bundling skipped unless ``bundle``; aws-cdk-lib's
    built-in CloudFormation validation (a report plugin that `cdk synth` runs, about 3 s of CPU per synthesis of the
    whole app) only with ``validation``: the tests of the gate turn it on, a test of template properties needs none."""
    from aws_cdk import App

    context = cdk_json_context() | dict(overrides or {})
    if not bundle:
        context["aws:cdk:bundling-stacks"] = []
    return App(context=context, outdir=str(outdir) if outdir else None, builtin_cloud_formation_validation=validation)


@dataclass(frozen=True)
class SynthesizedApp:
    """The app after synthesis: its construct tree, its cloud assembly folder and each stack's template."""

    app: App
    outdir: Path
    templates: dict[str, Template]


def synthesize(
    outdir: Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    control_tower_checks: bool = True,
    stacks: Collection[str] = STACK_NAMES,
) -> SynthesizedApp:
    """Build the whole app (or only ``stacks``) into ``outdir`` with cdk-nag (an unacknowledged finding fails here)
    and, unless turned off for a test that reads template properties only, AWS Control Tower's controls, as `cdk
    synth` runs them (and, with them, aws-cdk-lib's built-in CloudFormation validation)."""
    from aws_cdk.assertions import Template

    from sqs_decoupling.stacks.app_builder import build_app

    app = build_app(
        make_app(overrides, outdir=outdir, validation=control_tower_checks),
        control_tower_checks=control_tower_checks,
        stacks=stacks,
    )
    assembly = app.synth()
    templates = {stack.stack_name: Template.from_json(stack.template) for stack in assembly.stacks}
    return SynthesizedApp(app, outdir, templates)


@pytest.fixture(scope="session", autouse=True)
def own_temporary_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Each test process (and what it starts) gets a temporary directory of its own, as each Lambda execution
    environment has its own /tmp. The handler removes every job directory it finds in ``<tmp>/video-processor/`` when
    an invocation starts (in Lambda, what an invocation stopped at its timeout left there); with one /tmp for every
    pytest-xdist worker, one worker's handler removed the directories of jobs another worker was running."""
    path = tmp_path_factory.mktemp("tmp")
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = tempfile.tempdir = str(path)
    yield path
    tempfile.tempdir = None
    if saved is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved


def gates_selected(session: pytest.Session) -> bool:
    """Whether a test of this run checks the gates `cdk synth` runs besides cdk-nag (marker ``gate``): AWS Control
    Tower's controls and aws-cdk-lib's CloudFormation validation. A synthesis that tests share runs them only then:
    they report and never change a template, and they are most of a whole-app synthesis' CPU (in a new process,
    7.5-7.8 s with them, 3.0-3.1 s without). Every gate test is slow, so `make test` runs them and `make test-fast`
    does not; cdk-nag runs in every synthesis (an unacknowledged finding fails it in either)."""
    return any(item.get_closest_marker("gate") for item in session.items)


@pytest.fixture(scope="session")
def synthesized(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """Every stack of the app as `make synth` builds it (without asset bundling), synthesized once; with every gate
    of `cdk synth` when a test of the run checks them (``gates_selected``)."""
    return synthesize(tmp_path_factory.mktemp("cdk.out"), control_tower_checks=gates_selected(request.session))


@pytest.fixture(scope="session")
def templates(synthesized: SynthesizedApp) -> dict[str, Template]:
    return synthesized.templates


class StackTemplates(Mapping[str, "Template"]):
    """The app's templates under one configuration, each stack synthesized alone when a test first reads it."""

    def __init__(self, overrides: Mapping[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
        self._overrides, self._tmp_path_factory = overrides, tmp_path_factory
        self._templates: dict[str, Template] = {}

    def __getitem__(self, stack: str) -> Template:
        if stack not in STACK_NAMES:
            raise KeyError(stack)
        if stack not in self._templates:
            outdir = self._tmp_path_factory.mktemp("cdk.out")
            built = synthesize(outdir, self._overrides, control_tower_checks=False, stacks=[stack])
            self._templates[stack] = built.templates[stack]
        return self._templates[stack]

    def __iter__(self) -> Iterator[str]:
        return iter(STACK_NAMES)

    def __len__(self) -> int:
        return len(STACK_NAMES)


@pytest.fixture(scope="session")
def synth_with(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Mapping[str, Template]]:
    """The app's templates with configuration overrides: ``synth_with(key=value, ...)[stack]``, each stack
    synthesized once per configuration, alone (the stacks are independent), when a test first reads it.

    For tests of template properties: cdk-nag runs, Control Tower's controls do not (cfn-guard is most of a
    synthesis' time); they gate every documented configuration, with every stack, in the configuration matrix."""
    cache: dict[str, StackTemplates] = {}

    def synth(**overrides: Any) -> Mapping[str, Template]:
        key = json.dumps(overrides, sort_keys=True)
        if key not in cache:
            cache[key] = StackTemplates(overrides, tmp_path_factory)
        return cache[key]

    return synth


# Session fixtures that tests share: every test using one goes to the same pytest-xdist process (with --dist
# loadgroup), so the fixture is made once per run instead of once per process.
# - The syntheses: one process does that CDK work (its Node.js warmed up once) while the others run the rest. The tests
#   of other configurations (``synth_with`` alone) share no synthesis with the default app's, so they are a group of
#   their own: the default app's group holds about a third of `make test-fast`'s CPU, and one process running both
#   would be the last to finish.
# - The moto server of tests/integration: one server per run instead of one per process, and the tests that mostly
#   wait on it (long polls, visibility timeouts, drains: about 60 s of waiting for 10 s of CPU) run one after another
#   in one process from the start, while the others keep both cores busy. Spread over every process, they ran together
#   at the end, with a core half idle for the last 30 s of the run (the suite at 3 processes on 2 cores, one hour:
#   106.6 s and 185 s of CPU before, 96.2 s and 177 s after). The user data tests, which synthesize and install a
#   worker (8 s of CPU), have a server and a group of their own: in this one they made it the run's longest process.
SHARED_FIXTURES = {
    SYNTHESIS: frozenset({"synthesized", "templates"}),
    CONFIGURATIONS: frozenset({"synth_with"}),
    MOTO_SERVER: frozenset({"moto_endpoint"}),
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using a shared fixture (SHARED_FIXTURES) share a group. Then the tests in the order `make test` hands
    them out (``tests/support/schedule.py``: the longest units first, slow tests before the others; a stable sort
    keeps file order within a place): with pytest-xdist, a long test handed out last would keep one process busy while
    the others sit idle. Tests marked ``last`` after the others of their place: they wait on work started in the
    background, which the tests before them overlap."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        group = next((group for group, names in SHARED_FIXTURES.items() if names & fixtures), None)
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=schedule_key)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What a test process holds once the tests are collected (modules, the CDK's bindings, the test items: most of
    its objects, kept for the whole run) is left out of the garbage collector's full passes from then on
    (``gc.freeze``), where each full pass went through all of it again. One run each: the full passes of `make test`'s
    three processes took 8.9 s of CPU before (9-22 passes a process), 5.9 s after (12-30 cheaper ones); `make
    test-fast`'s, 3.6 s before and 2.3 s after. Objects the tests make are collected as before."""
    gc.collect()
    gc.freeze()


# Stale permission-catalogue entries. Every recording (tests/support/permissions/recorder.py) appends its calls to
# the file PERMISSION_CALLS_OUT names; this process (pytest-xdist's controller, or the only one) creates it before
# the workers start, so they inherit it. After a run of the whole suite that passed, an entry that no recorded call
# covers fails the run: the code that made the call is gone, and the entry would keep its permission in the
# rehearsal's eyes. A partial run (paths, -k, -m, --lf, --collect-only, a skipped test) cannot tell, so it does not
# check.


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get(CALLS_OUT_ENV):
        return
    out = Path(tempfile.mkdtemp(prefix="permission-calls-")) / "calls.jsonl"
    out.touch()
    os.environ[CALLS_OUT_ENV] = str(out)
    config.stash[_CALLS_OUT] = out


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    out = config.stash.get(_CALLS_OUT, None)
    if out is None:
        return
    whole_suite = (
        config.args_source is pytest.Config.ArgsSource.TESTPATHS
        and not config.option.keyword
        and not config.option.markexpr
        and not config.getoption("lf", False)
        and not config.getoption("deselect", None)
        and not config.option.collectonly
    )
    lines = out.read_text(encoding="utf-8").splitlines()
    shutil.rmtree(out.parent, ignore_errors=True)
    os.environ.pop(CALLS_OUT_ENV, None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = bool(reporter is not None and reporter.stats.get("skipped"))
    if exitstatus != 0 or not whole_suite or skipped:
        return  # (a skipped test may be the one recording that would have covered an entry)
    entries = stale(Call(**json.loads(line)) for line in lines)
    if entries:
        text = "\n".join(f"  {e.principal}: {e.service}.{e.operation} {dict(e.params)}" for e in entries)
        message = (
            f"{len(entries)} permission catalogue entries cover no call any recording made (stale: remove each from "
            f"tests/support/permissions/calls.py with the code that made it, or explain it in NOT_RECORDED):\n{text}"
        )
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
