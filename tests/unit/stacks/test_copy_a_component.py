"""docs/copy-a-component.md: each construct and stack of its table, copied alone (exactly the files tools/copying.py
lists) into a fresh `cdk init`-style app, synthesizes there with nothing installed but the table's pip packages, and
leaves nothing in the project that its `.gitignore` does not ignore, but the copy and the app's own files."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Callable
from pathlib import Path

import pytest

from sqs_decoupling.common import python_bundling
from tests.support.schedule import COPIED_PROJECTS
from tools import copying
from tools.copying import COMPONENTS, Component

# The `.gitignore` that `cdk init app --language python` writes, as the pinned CDK CLI ships it: aws-cdk-cli's
# packages/aws-cdk/lib/init-templates/app/python/.template.gitignore (npm aws-cdk 2.1149.0,
# node_modules/aws-cdk/lib/init-templates/app/python/.template.gitignore here).
CDK_INIT_GITIGNORE = Path(__file__).with_name("cdk_init_app_python.gitignore")
PINNED_CLI_GITIGNORE = copying.REPO_ROOT / "node_modules/aws-cdk/lib/init-templates/app/python/.template.gitignore"

# What each copy's template must hold: the component's own resources.
RESOURCES = {
    "EncryptedQueue": {"AWS::SQS::Queue", "AWS::KMS::Key", "AWS::CloudWatch::Alarm"},
    "UploadIntake": {"AWS::S3::Bucket", "Custom::S3BucketNotifications", "AWS::SQS::QueuePolicy"},
    "LambdaQueueConsumer": {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping"},
    "QueueWorkerFleet": {"AWS::AutoScaling::AutoScalingGroup", "AWS::EC2::LaunchTemplate", "AWS::EC2::VPC"},
    "SecureQueueStack": {"AWS::SQS::Queue", "AWS::IAM::Role", "AWS::CloudWatch::Dashboard"},
    "VideoPipelineStack": {"AWS::Lambda::Function", "AWS::Lambda::LayerVersion", "AWS::Lambda::EventSourceMapping"},
    "WorkerFleetStack": {"AWS::AutoScaling::AutoScalingGroup", "AWS::AutoScaling::ScalingPolicy", "AWS::EC2::VPC"},
}

# Runs app.py as `python app.py` does (its folder first on sys.path), then reports where every module came from.
RUN_APP = """\
import json, os, runpy, sys
sys.path[0] = os.getcwd()
runpy.run_path("app.py", run_name="__main__")
files = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())}
with open(sys.argv[1], "w") as report:
    json.dump({"path": sys.path, "files": {name: file for name, file in files.items() if file}}, report)
"""

# Every test here goes to one pytest-xdist process (--dist loadgroup), so what they share is worked out once per run
# instead of once in each process: which distribution installed each file, what each component needs (for a stack,
# constructing it), and a virtualenv for each set of packages the table lists.
pytestmark = pytest.mark.xdist_group(COPIED_PROJECTS)

# What a copy of each component needs, worked out once per process.
copy_of = functools.cache(copying.copy_of)


@pytest.fixture(scope="session")
def virtualenv_with(tmp_path_factory: pytest.TempPathFactory) -> Callable[[tuple[str, ...]], Path]:
    """``virtualenv_with(distributions)``: the python of a virtualenv holding only ``distributions`` (see
    :func:`_virtualenv_with`), made once per run for each set of distributions. The rows that install the same
    packages share it: a copied app only reads the virtualenv (its bundling writes to the cache folder)."""
    made: dict[tuple[str, ...], Path] = {}

    def virtualenv(distributions: tuple[str, ...]) -> Path:
        if distributions not in made:
            made[distributions] = _virtualenv_with(tmp_path_factory.mktemp("venv"), distributions)
        return made[distributions]

    return virtualenv


@pytest.mark.slow
@pytest.mark.parametrize("component", COMPONENTS, ids=lambda component: component.name)
def test_a_copy_synthesizes_alone_in_a_cdk_init_app_and_leaves_no_build_output(
    component: Component, tmp_path: Path, virtualenv_with: Callable[[tuple[str, ...]], Path]
) -> None:
    # GIVEN a fresh git repository laid out as `cdk init app --language python` does (its .gitignore, cdk.json with
    # the feature flags, requirements.txt), holding exactly the files the table lists for the component and the
    # table's example app.py, and a virtualenv where only the table's pip packages (and what they require) are
    # installed (one per package set, shared by the rows that list the same); the user's cache folder
    # (XDG_CACHE_HOME) holds this repository's wheels and archives
    project = tmp_path / "my-app"
    copy = copy_of(component)
    sources = copying.copy_into(copy, project)
    app_files = _write_cdk_init_app(project, component, copy)
    subprocess.run(["git", "init", "--quiet", str(project)], check=True)
    python = virtualenv_with(copy.distributions)
    xdg_cache_home = tmp_path / "xdg-cache"
    cache = _cache_reading_this_repositorys(xdg_cache_home / python_bundling.USER_CACHE_NAME)

    # WHEN the app runs there, as `cdk synth` runs it (CDK_OUTDIR, cdk.json's context), in that virtualenv alone
    report = tmp_path / "modules.json"
    result = subprocess.run(
        [str(python), "-c", RUN_APP, str(report)],
        cwd=project,
        env=_environment(project, xdg_cache_home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # THEN it synthesizes, and the template holds the component's resources
    assert result.returncode == 0, result.stderr[-3000:]
    assert RESOURCES[component.name] <= _resource_types(project / "cdk.out")
    # AND git sees only the copied sources and the app's files: no build output outside ignored paths
    assert _untracked(project) == set(sources) | app_files
    # AND every module came from the copy, the virtualenv or the standard library, none from this checkout
    modules = json.loads(report.read_text())
    allowed = (project, python.parents[1], Path(sys.base_prefix))
    assert [entry for entry in modules["path"] if not _within(entry, allowed)] == []
    assert {name: file for name, file in modules["files"].items() if not _within(file, allowed)} == {}
    ours = {name: file for name, file in modules["files"].items() if name.partition(".")[0] == copying.PACKAGE}
    assert ours and all(_within(file, (project,)) for file in ours.values()), ours
    # AND the bundling went to the user's cache by default (the project has no build/), where the stacks'
    # dependencies assets were this repository's archives: nothing was installed for them
    # (QueueWorkerFleet's example bundles a worker of its own, which its synthesis installed there)
    installed = {path.name.rsplit("-", 1)[0] for path in (cache / "site-packages").iterdir()}
    assert installed == ({"my_worker-cp311-arm64"} if component.app_files else set())


@pytest.mark.slow  # constructs every stack to find what it imports, as the copies' own test does
def test_the_copy_page_shows_what_the_code_needs() -> None:
    # GIVEN docs/copy-a-component.md
    page = copying.DOCS_PAGE.read_text()
    start = page.index(copying.GENERATED_START)
    shown = page[start : page.index(copying.GENERATED_END) + len(copying.GENERATED_END)]
    # WHEN tools/copying.py computes what each component needs
    computed = copying.markdown(copy_of(component) for component in COMPONENTS)
    # THEN the page shows exactly that
    assert shown == computed, "docs/copy-a-component.md is stale: run `python -m tools.copying --write-docs`"


def test_the_gitignore_fixture_is_the_one_the_pinned_cdk_cli_writes() -> None:
    # GIVEN the fixture and the pinned CDK CLI's template (node_modules: `make setup`)
    # THEN they are the same text, so a CLI upgrade that changes what `cdk init` ignores shows here
    assert CDK_INIT_GITIGNORE.read_text() == PINNED_CLI_GITIGNORE.read_text()


def _write_cdk_init_app(project: Path, component: Component, copy: copying.Copy) -> set[str]:
    """app.py (the table's example), cdk.json, requirements.txt, .gitignore and the example's own files."""
    (project / "app.py").write_text((copying.EXAMPLES / f"{component.example}.py").read_text())
    cdk_json = {"app": "python3 app.py", "context": copying.feature_flags()}
    (project / "cdk.json").write_text(json.dumps(cdk_json, indent=2))
    (project / "requirements.txt").write_text("".join(f"{name}\n" for name in copy.distributions))
    (project / ".gitignore").write_text(CDK_INIT_GITIGNORE.read_text())
    own = copying.app_files(component)
    for name in own:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_bytes((copying.EXAMPLES / name).read_bytes())
    return {"app.py", "cdk.json", "requirements.txt", ".gitignore", *own}


def _virtualenv_with(folder: Path, distributions: tuple[str, ...]) -> Path:
    """A virtualenv holding only ``distributions``, what they require and pip (as `python -m venv` installs it;
    ``PythonBundle`` runs it): links to this interpreter's installed files (no download), nothing else."""
    venv.create(folder, with_pip=False, symlinks=True)
    site = next(folder.glob("lib/python*/site-packages"))
    wanted = {"pip"}.union(*(copying.requirements_of(name) for name in distributions))
    for name in wanted:
        installed = importlib.metadata.distribution(name)
        for file in installed.files or ():
            if file.parts[0] != "..":  # console scripts live outside site-packages
                target = site / file
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    target.symlink_to(Path(str(installed.locate_file(file))).resolve())
    return folder / "bin" / "python"


def _cache_reading_this_repositorys(cache: Path) -> Path:
    """A bundling cache that reads this repository's wheels and archives (what a copy adds lands here, never there):
    a link to each wheelhouse folder, a hard link to each archive (CDK refuses a symlink as bundling output)."""
    for folder in ("wheelhouse", "archives", "site-packages"):
        (cache / folder).mkdir(parents=True)
    for entry in python_bundling.WHEELHOUSE.iterdir():
        (cache / "wheelhouse" / entry.name).symlink_to(entry.resolve())
    for archive in python_bundling.ARCHIVES.glob("*.zip"):
        try:
            os.link(archive.resolve(), cache / "archives" / archive.name)
        except OSError:  # another file system
            shutil.copy2(archive, cache / "archives" / archive.name)
    return cache


def _environment(project: Path, xdg_cache_home: Path) -> dict[str, str]:
    """This environment as a user's shell has it (no PYTHONPATH, no cache variable), plus what `cdk synth` sets."""
    unset = ("PYTHONPATH", "VIRTUAL_ENV", python_bundling.CACHE_DIR_VARIABLE)
    cdk_json = json.loads((project / "cdk.json").read_text())
    return {k: v for k, v in os.environ.items() if k not in unset} | {
        "CDK_OUTDIR": str(project / "cdk.out"),
        "CDK_CONTEXT_JSON": json.dumps(cdk_json["context"]),
        "XDG_CACHE_HOME": str(xdg_cache_home),
        # aws-cdk-lib's own template validator (on in `make synth`) takes three quarters of each run: not what
        # this test is about.
        "CDK_VALIDATION": "false",
    }


def _within(path: str, roots: tuple[Path, ...]) -> bool:
    return any(Path(path).is_relative_to(root) for root in roots)


def _resource_types(outdir: Path) -> set[str]:
    manifest = json.loads((outdir / "manifest.json").read_text())
    types: set[str] = set()
    for artifact in manifest["artifacts"].values():
        if artifact["type"] == "aws:cloudformation:stack":
            template = json.loads((outdir / artifact["properties"]["templateFile"]).read_text())
            types |= {resource["Type"] for resource in template["Resources"].values()}
    return types


def _untracked(project: Path) -> set[str]:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(line.startswith("?? ") for line in status.splitlines()), status
    return {line[3:] for line in status.splitlines()}
