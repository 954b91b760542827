"""The project's documentation as the tests read it: README.md, the pages of docs/ and each component's README.

A test that checks a documented fact finds the text by its heading with :func:`section`, wherever it lives, so the
text can move between files and the test still reads it (and fails when it is gone or says something else).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from tools.localcloud.paths import REPO_ROOT

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def documents() -> list[Path]:
    """README.md, docs/*.md, and every README.md under sqs_decoupling/ and tools/."""
    return [
        REPO_ROOT / "README.md",
        *sorted((REPO_ROOT / "docs").glob("*.md")),
        *sorted((REPO_ROOT / "sqs_decoupling").rglob("README.md")),
        *sorted((REPO_ROOT / "tools").rglob("README.md")),
    ]


def relative(path: Path) -> str:
    """``path`` from the repository's root (as it is, when it lies outside)."""
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)


def prose_lines(markdown: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(markdown.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield number, line


def headings(markdown: str) -> Iterator[tuple[int, int, str]]:
    """(line number, level, title) of each heading outside fenced code blocks."""
    for number, line in prose_lines(markdown):
        match = HEADING.match(line)
        if match:
            yield number, len(match.group(1)), match.group(2)


def section(title: str) -> tuple[Path, str]:
    """The document whose heading starts with ``title``, and the text under that heading up to the next heading of
    the same or a higher level. Fails unless exactly one heading of all the documents matches."""
    found = []
    for path in documents():
        markdown = path.read_text(encoding="utf-8")
        lines = markdown.splitlines()
        marks = list(headings(markdown))
        for index, (number, level, text) in enumerate(marks):
            if text.startswith(title):
                end = next((n for n, lv, _ in marks[index + 1 :] if lv <= level), len(lines) + 1)
                found.append((path, "\n".join(lines[number : end - 1])))
    where = [relative(path) for path, _ in found]
    assert len(found) == 1, f"expected one heading starting {title!r} in the documentation, found {where or 'none'}"
    return found[0]


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (hyphens and underscores kept), a hyphen
    for each space."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor, with GitHub's -1, -2, ... suffixes for repeated titles."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for _, _, title in headings(markdown):
        base = slug(title)
        count = seen.get(base, 0)
        result.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return result


def broken_links(path: Path, markdown: str) -> Iterator[tuple[int, str, str]]:
    """(line, link, what is wrong) for each relative link of ``markdown`` (a file at ``path``) whose file does not
    exist, or whose #anchor names no heading of that Markdown file. Links with a scheme (https:, mailto:) are not
    followed."""
    for number, line in prose_lines(markdown):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                yield number, target, f"{linked} does not exist"
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
                yield number, target, f"{relative(linked)} has no heading with the anchor #{anchor}"
