"""What a maintainer or a packager reads about the project: pyproject.toml's metadata, the licence files, the security
and contributing guides, and a changelog whose versions, dates and links agree with pyproject.toml."""

from __future__ import annotations

import itertools
import re
import tomllib

import pytest

from tests.unit.test_readme import MAKEFILE, make_targets, mentions
from tools.localcloud.paths import REPO_ROOT

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
CHANGELOG = (REPO_ROOT / "CHANGELOG.md").read_text()
HOLDER = "The sqs-decoupling-cdk maintainers"


def test_pyproject_names_authors_urls_classifiers_and_keywords() -> None:
    assert PROJECT["authors"] == [{"name": HOLDER}]
    assert set(PROJECT["urls"]) == {"Homepage", "Repository", "Issues", "Changelog", "Security"}
    assert all(url.startswith(PROJECT["urls"]["Repository"]) for url in PROJECT["urls"].values())
    assert all(re.fullmatch(r"[A-Z][\w .+-]*( :: [\w .+-]+)+", c) for c in PROJECT["classifiers"])
    # AND the Python classifiers match requires-python, from its minimum on
    minimum = PROJECT["requires-python"].removeprefix(">=")
    versions = [c.rsplit(" :: ", 1)[1] for c in PROJECT["classifiers"] if re.search(r"Python :: 3\.\d+$", c)]
    assert versions[0] == minimum
    assert {"aws-cdk", "sqs"} <= set(PROJECT["keywords"])


def test_the_licence_names_its_holder_and_a_notice_goes_with_it() -> None:
    licence = (REPO_ROOT / "LICENSE").read_text()
    assert "[name of copyright owner]" not in licence
    assert f"Copyright 2026 {HOLDER}" in licence
    notice = (REPO_ROOT / "NOTICE").read_text()
    assert notice.splitlines()[:2] == [PROJECT["name"], f"Copyright 2026 {HOLDER}"]
    assert PROJECT["license-files"] == ["LICENSE", "NOTICE"]


def test_security_and_contributing_guides_exist_and_say_how() -> None:
    security = (REPO_ROOT / "SECURITY.md").read_text()
    assert "Report a vulnerability" in security and "Do not open a public issue" in security
    contributing = (REPO_ROOT / "CONTRIBUTING.md").read_text()
    for heading in ("## Set up and run", "## Test", "## Move the pins (locks)", "## Release"):
        assert heading in contributing


@pytest.mark.parametrize("document", ["CONTRIBUTING.md", "SECURITY.md"])
def test_every_make_target_a_guide_names_exists(document: str) -> None:
    named = {m.target for m in mentions((REPO_ROOT / document).read_text(), MAKEFILE) if m.target}
    assert named - make_targets(MAKEFILE) == set()


def test_the_changelog_releases_the_version_pyproject_declares_with_dates_and_links() -> None:
    # GIVEN the changelog's version headings
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\S+))?$", CHANGELOG, re.M)
    assert headings[0] == ("Unreleased", "")
    released = headings[1:]
    # THEN the newest release is pyproject's version, each release has an ISO date, newest first
    assert released[0][0] == PROJECT["version"]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) for _, date in released)
    assert [date for _, date in released] == sorted((date for _, date in released), reverse=True)
    # AND every heading has a link reference on the project's repository: tags compared in order
    repository = PROJECT["urls"]["Repository"]
    links = dict(re.findall(r"^\[([^\]]+)\]: (\S+)$", CHANGELOG, re.M))
    versions = [version for version, _ in released]
    assert links["Unreleased"] == f"{repository}/compare/v{versions[0]}...HEAD"
    for newer, older in itertools.pairwise(versions):
        assert links[newer] == f"{repository}/compare/v{older}...v{newer}"
    assert links[versions[-1]] == f"{repository}/releases/tag/v{versions[-1]}"
