"""The import graph reads as the architecture: each package imports only packages below it, and no files import each
other in a loop.

The layers, from the ground up (a package may import its own modules and any package on a lower layer; two packages
on one layer do not import each other):

    contracts                                  standard library only: limits, names, catalogues
    regions, queue.envelope                    runtime libraries: the region, client-side encryption
    video                                      the video processing core both consumers call (opens envelopes)
    lambda_consumer.runtime, worker_fleet.worker, producer, redrive    the runtimes (what pip installs, with the above)
    common                                     what every construct uses
    queue, intake                              the queue and the upload intake (intake sends to a queue)
    lambda_consumer, worker_fleet              the two consumers' constructs
    stacks                                     the three example stacks and the app
    tools.localcloud < tools.copying < tools.scaling < tools.cost < tools.demo < bench   the tools, never imported by
                                               the product
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.localcloud.paths import REPO_ROOT

P = "sqs_decoupling"
LAYERS: tuple[tuple[str, ...], ...] = (
    (P, f"{P}.contracts"),
    (f"{P}.regions", f"{P}.queue.envelope"),
    (f"{P}.video",),
    (f"{P}.lambda_consumer.runtime", f"{P}.worker_fleet.worker", f"{P}.producer", f"{P}.redrive"),
    (f"{P}.common",),
    (f"{P}.queue",),
    (f"{P}.intake",),
    (f"{P}.lambda_consumer", f"{P}.worker_fleet"),
    (f"{P}.stacks",),
    ("tools", "tools.localcloud"),
    ("tools.copying",),
    ("tools.scaling",),
    ("tools.cost",),
    ("tools.demo",),
    ("bench",),
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
SOURCES = (P, "tools", "bench")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """The longest package of LAYERS that holds ``module``."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in RANK:
            return ".".join(parts[:end])
    raise AssertionError(f"{module} is on no layer: add its package to LAYERS in {__file__}")


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of this repository's packages, at any depth of the file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from package import module` names a module when one exists by that name
            names = [
                f"{node.module}.{alias.name}"
                if (REPO_ROOT / node.module.replace(".", "/") / f"{alias.name}.py").is_file()
                or (REPO_ROOT / node.module.replace(".", "/") / alias.name).is_dir()
                else node.module
                for alias in node.names
            ]
        else:
            continue
        yield from ((node.lineno, name) for name in names if name.split(".")[0] in SOURCES)


FILES = sorted(path for top in SOURCES for path in (REPO_ROOT / top).rglob("*.py") if "results" not in path.parts)
# Every test of this module reads the same graph: one process runs them all (pytest-xdist's loadgroup), so the
# files are parsed once per run, when a test first reads the graph, and not by every process that collects them.
pytestmark = pytest.mark.xdist_group("import-graph")


@functools.cache
def graph() -> dict[str, list[tuple[int, str]]]:
    """Module -> (line, module) of each import of this repository's packages."""
    return {module_name(path): [(line, target) for line, target in imports(path)] for path in FILES}


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_a_module_imports_only_its_own_package_and_lower_layers(path: Path) -> None:
    # GIVEN a module of the product, the tools or the benchmarks, and the layer of its package
    module = module_name(path)
    home = package_of(module)
    # WHEN its imports of this repository's packages are read
    upward = [
        f"line {line}: {target} ({package_of(target)}, layer {RANK[package_of(target)]})"
        for line, target in graph()[module]
        if package_of(target) != home and RANK[package_of(target)] >= RANK[home]
    ]
    # THEN each goes to its own package or down
    assert not upward, f"{module} ({home}, layer {RANK[home]}) imports sideways or up: {upward}"


def test_no_files_import_each_other_in_a_loop() -> None:
    # GIVEN the graph of module -> modules it imports (a package's __init__ counts as its own module)
    edges = {module: {target for _, target in targets if target in graph()} for module, targets in graph().items()}
    # WHEN it is searched depth first
    loops: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                loops.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    # THEN it has no loop
    assert not loops, "import loops: " + "; ".join(" -> ".join(loop) for loop in loops)


def test_the_check_sees_an_upward_import() -> None:
    # GIVEN the stacks layer and the contracts layer THEN the order says the stacks are above (a check that ranked
    # nothing would pass every file)
    assert RANK[package_of(f"{P}.stacks.app_builder")] > RANK[package_of(f"{P}.contracts.sqs")]
    assert package_of(f"{P}.queue.envelope.envelope") == f"{P}.queue.envelope"
    assert RANK[f"{P}.queue"] > RANK[f"{P}.queue.envelope"]
