"""``python -m tests.support.permissions.table CALLS.jsonl...``: the recorded calls as a table, one row per kind.

Run the wired tests with ``PERMISSION_CALLS_OUT=<file>`` (every recording appends its symbolized calls there), then
print the file. Calls that differ only in an object key's generated parts (version ids, ETags, hashes, the clip's
name) share a row: the key is shown by its shape, e.g. ``processed/<source key>/<version>/preview/manifest.json``.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.support.permissions.calls import Call

_GENERATED = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{64}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_KEY_PARAMS = ("Key", "Prefix")


def read_calls(paths: Iterable[Path]) -> list[Call]:
    calls = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            calls.append(Call(entry["principal"], entry["service"], entry["operation"], entry["params"]))
    return calls


def key_shape(key: str) -> str:
    """``processed/uploads/clip 1.mp4/<uuid>/preview/x.json`` -> ``processed/<source key>/<version>/preview/x.json``."""
    parts = key.split("/")
    shaped = ["<version>" if _GENERATED.match(part) else part for part in parts]
    text = "/".join(shaped)
    # The source key inside an output key (processed/<uploads/...>/...), and the uploaded file's own name.
    text = re.sub(r"^processed/uploads/.+?/(?=<version>/|[^/]*\.latest\.json$)", "processed/<source key>/", text)
    text = re.sub(r"^processed/_hashed/<version>/", "processed/_hashed/<sha256>/", text)
    return re.sub(r"^uploads/[^/]+$", "uploads/<file>", text)


def params_text(call: Call) -> str:
    """The call's parameters, sorted by name, object keys by their shape."""
    params = {name: key_shape(value) if name in _KEY_PARAMS else value for name, value in call.params.items()}
    return ", ".join(f"{name}={value}" for name, value in sorted(params.items()))


def row_text(call: Call) -> str:
    return f"{call.principal}: {call.service}.{call.operation}({params_text(call)})"


def rows(calls: Iterable[Call]) -> list[tuple[str, str, str, str, int]]:
    counted: Counter[tuple[str, str, str, str]] = Counter(
        (call.principal, call.service, call.operation, params_text(call)) for call in calls
    )
    return [(*kind, count) for kind, count in sorted(counted.items())]


def render(calls: Iterable[Call]) -> str:
    lines = ["| principal | service | operation | params | calls |", "|---|---|---|---|---|"]
    lines += [f"| {p} | {s} | {o} | {params} | {n} |" for p, s, o, params, n in rows(calls)]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    print(render(read_calls(Path(arg) for arg in argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
