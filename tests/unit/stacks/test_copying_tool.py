"""tools/copying.py works out what a copy needs from the code (imports, the bundles a stack builds, the pip
distributions), and python_bundling keeps its cache out of a copied project."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqs_decoupling.common.python_bundling import CACHE_DIR_VARIABLE, bundling_cache
from sqs_decoupling.stacks.video_pipeline_stack import video_processor_bundle
from tools import copying

# A package laid out as sqs_decoupling is: path -> source.
FAKE_PACKAGE = {
    "sqs_decoupling/__init__.py": "",
    "sqs_decoupling/a/__init__.py": "",
    "sqs_decoupling/a/thing.py": (
        "from __future__ import annotations\n"
        "import json\n"
        "from typing import TYPE_CHECKING\n"
        "import aws_cdk.aws_sqs\n"
        "from sqs_decoupling.b import tool\n"
        "from .sibling import VALUE\n"
        "if TYPE_CHECKING:\n"
        "    from sqs_decoupling.c import only_for_types\n"
        "else:\n"
        "    from sqs_decoupling.c import at_run_time\n"
        "def later():\n"
        "    from sqs_decoupling.d.lazy import CALLED\n"
    ),
    "sqs_decoupling/a/sibling.py": "VALUE = 1\n",
    "sqs_decoupling/a/unused.py": "",
    "sqs_decoupling/b/__init__.py": "from sqs_decoupling.e.shared import NAME\n",
    "sqs_decoupling/b/tool.py": "",
    "sqs_decoupling/c/__init__.py": "",
    "sqs_decoupling/c/only_for_types.py": "import pydantic\n",
    "sqs_decoupling/c/at_run_time.py": "",
    "sqs_decoupling/d/__init__.py": "",
    "sqs_decoupling/d/lazy.py": "",
    "sqs_decoupling/e/__init__.py": "",
    "sqs_decoupling/e/shared.py": "",
    "sqs_decoupling/f/__init__.py": "",
}


def test_the_import_closure_follows_every_import_through_the_packages_on_the_way(tmp_path: Path) -> None:
    # GIVEN a package whose module imports absolutely, relatively, inside a function, through a package __init__
    # that imports another package, and under `if TYPE_CHECKING:` (with an else)
    for name, source in FAKE_PACKAGE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(source)
    # WHEN its closure is computed
    files, external = copying.import_closure("sqs_decoupling.a.thing", root=tmp_path)
    # THEN it holds every module a run can import and each package __init__ on the way, nothing imported only for
    # type checkers and no module nothing imports; outside the package, the third-party names only
    assert {path.relative_to(tmp_path).as_posix() for path in files} == set(FAKE_PACKAGE) - {
        "sqs_decoupling/a/unused.py",
        "sqs_decoupling/c/only_for_types.py",
        "sqs_decoupling/f/__init__.py",
    }
    assert external == {"aws_cdk.aws_sqs"}


def test_a_module_that_does_not_exist_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"No module 'sqs_decoupling.nowhere' in .*: name a module of sqs_decoupling/"):
        copying.import_closure("sqs_decoupling.nowhere", root=tmp_path)


def test_the_pip_packages_are_the_fewest_that_install_everything_imported() -> None:
    # GIVEN the distributions of aws_cdk, constructs and jsii (the CDK modules import all three)
    imported = copying.distributions_of(["aws_cdk", "aws_cdk.aws_sqs", "constructs", "jsii", "aws_cdk.App"])
    # THEN aws-cdk-lib alone installs them (it requires constructs and jsii); a name that is not a module counts
    # for nothing
    assert imported == {"aws-cdk-lib", "constructs", "jsii"}
    assert copying.fewest(imported) == {"aws-cdk-lib"}


def test_a_stacks_copy_holds_what_its_bundles_build_from_and_a_constructs_none() -> None:
    # GIVEN the stack that bundles the Lambda consumer and the construct that takes a bundle from its caller
    pipeline = copying.copy_of(copying.component_named("VideoPipelineStack"))
    fleet = copying.copy_of(copying.component_named("QueueWorkerFleet"))
    # THEN the stack's copy holds every folder and file its bundle is built from, the requirements and the locks
    bundle = video_processor_bundle("arm64")
    for source, _ in bundle.sources:
        assert f"{source}/" in pipeline.paths or source in pipeline.paths
    assert pipeline.bundles == (bundle.requirements,)
    assert {lock.name for lock in bundle.lock.parent.glob("*.lock")} <= {Path(f).name for f in pipeline.files()}
    # AND the construct's copy holds no runtime: the user brings it
    assert fleet.bundles == ()
    assert not any("/worker/" in path or "/runtime/" in path for path in fleet.files())


def test_copy_copies_the_listed_files_to_the_same_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN `python -m tools.copying --copy EncryptedQueue DEST` runs
    copying.main(["--copy", "EncryptedQueue", str(tmp_path)])
    # THEN DEST holds exactly the files the table lists, and the output says what to install
    expected = copying.copy_of(copying.component_named("EncryptedQueue")).files()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == expected
    assert "pip install aws-cdk-lib" in capsys.readouterr().out


def test_an_unknown_component_is_refused_with_the_names_allowed() -> None:
    with pytest.raises(SystemExit, match=r"No component 'Queue': choose one of EncryptedQueue, UploadIntake, "):
        copying.main(["--copy", "Queue", "anywhere"])


@pytest.mark.parametrize(
    ("environment", "project_has_build", "expected"),
    [
        ({CACHE_DIR_VARIABLE: "/srv/cache"}, True, "/srv/cache"),
        ({}, True, "{project}/build"),
        ({"XDG_CACHE_HOME": "/xdg"}, False, "/xdg/sqs-decoupling-cdk"),
        ({"XDG_CACHE_HOME": "relative"}, False, "{home}/.cache/sqs-decoupling-cdk"),
        ({}, False, "{home}/.cache/sqs-decoupling-cdk"),
    ],
    ids=["the variable", "build/ of this repository", "XDG_CACHE_HOME", "a relative XDG_CACHE_HOME", "~/.cache"],
)
def test_the_bundling_cache_is_outside_a_project_without_build(
    tmp_path: Path, environment: dict[str, str], project_has_build: bool, expected: str
) -> None:
    # GIVEN a project with or without a build/ folder of its own, and the environment
    if project_has_build:
        (tmp_path / "build").mkdir()
    # WHEN the bundling cache is chosen
    cache = bundling_cache(environment, tmp_path)
    # THEN it is the variable's folder, else build/, else the user's cache folder (the XDG rule)
    assert cache == Path(expected.format(project=tmp_path, home=Path.home()))


def test_a_relative_cache_variable_fails_with_the_variable_and_its_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"SQS_DECOUPLING_CACHE_DIR is 'cache': set it to an absolute folder path"):
        bundling_cache({CACHE_DIR_VARIABLE: "cache"}, tmp_path)
