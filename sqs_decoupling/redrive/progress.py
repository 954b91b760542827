"""A text progress bar: redrawn in place on a terminal, one line per change of a cell elsewhere (logs, CI, tests)."""

from __future__ import annotations

from typing import TextIO

WIDTH = 30


class ProgressBar:
    """``bar.update(moved, total)``; ``bar.finish()`` ends the line. ``total`` None: not counted yet."""

    def __init__(self, stream: TextIO, *, label: str = "moved") -> None:
        self.stream = stream
        self.label = label
        self.interactive = stream.isatty()
        self._last: str | None = None

    def render(self, done: int, total: int | None) -> str:
        if not total:
            return f"[{'?' * WIDTH}] {done} {self.label}"
        filled = min(WIDTH, WIDTH * done // total)
        percent = min(100, 100 * done // total)
        return f"[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total} {self.label} ({percent}%)"

    def update(self, done: int, total: int | None) -> None:
        line = self.render(done, total)
        if self.interactive:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif line != self._last and (self._last is None or _bar(line) != _bar(self._last) or done == total):
            self.stream.write(line + "\n")
        self._last = line

    def finish(self) -> None:
        if self.interactive and self._last is not None:
            self.stream.write("\n")
            self.stream.flush()


def _bar(line: str) -> str:
    return line.split("]", 1)[0]
