"""One home per shared limit: each value is written once, in one product module, and every other place names it.

The limits the stacks, the runtimes, the demo and the tools all hold to (SQS's visibility maximum and message sizes,
the video size, the worker's concurrency) live in ``sqs_decoupling/contracts/``. A second copy of a value drifts: the
review that asked for this found the 12-hour visibility maximum written four times and the video size with three
caps. These tests read the product's source (``sqs_decoupling/`` and ``tools/``) and find every number written there.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sqs_decoupling.contracts import media, sqs, worker
from tools.localcloud.paths import REPO_ROOT

PRODUCT = ("sqs_decoupling", "tools")
# Every test here reads the same parsed product: one process runs them all (pytest-xdist's loadgroup), so it is
# parsed once per run.
pytestmark = pytest.mark.xdist_group("product-source")
# Units are not limits: their definitions are skipped and their names count as the values they stand for.
UNITS = {"KIB": 1024, "MIB": media.MIB, "GIB": 1024 * media.MIB}

# value -> (the limit's name, the one module that writes it)
HOMES: dict[int, tuple[str, str]] = {
    sqs.MAX_VISIBILITY_TIMEOUT_SECONDS: ("MAX_VISIBILITY_TIMEOUT_SECONDS", "sqs_decoupling/contracts/sqs.py"),
    sqs.MAX_MESSAGE_SIZE_BYTES: ("MAX_MESSAGE_SIZE_BYTES", "sqs_decoupling/contracts/sqs.py"),
    sqs.DEFAULT_MAX_MESSAGE_SIZE_BYTES: ("DEFAULT_MAX_MESSAGE_SIZE_BYTES", "sqs_decoupling/contracts/sqs.py"),
    media.DEFAULT_MAX_VIDEO_BYTES: ("DEFAULT_MAX_VIDEO_BYTES", "sqs_decoupling/contracts/media.py"),
    media.MAX_VIDEO_BYTES: ("MAX_VIDEO_BYTES", "sqs_decoupling/contracts/media.py"),
    media.MAX_S3_OBJECT_BYTES: ("MAX_S3_OBJECT_BYTES", "sqs_decoupling/contracts/media.py"),
}
LIMIT_NAMES = {name for name, _ in HOMES.values()} | {"MAX_CONCURRENCY"}

_OPERATORS: dict[type[ast.AST], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}


def _value(node: ast.expr) -> float | None:
    """The number a constant expression (literals, arithmetic, unit names) stands for; None for anything else."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.Name):
        return UNITS.get(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _value(node.left), _value(node.right)
        if left is None or right is None:
            return None
        return _OPERATORS[type(node.op)](left, right)
    return None


def _numbers(tree: ast.AST) -> Iterator[tuple[float, int]]:
    """Every number written in ``tree`` (the largest constant expressions; a unit's own definition skipped)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Assign | ast.AnnAssign) and _assigns_a_unit(node):
            continue
        if isinstance(node, ast.expr) and not isinstance(node, ast.Name):
            value = _value(node)
            if value is not None:
                yield value, node.lineno
                continue
        stack.extend(ast.iter_child_nodes(node))


def _assigns_a_unit(node: ast.Assign | ast.AnnAssign) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return any(isinstance(target, ast.Name) and target.id in UNITS for target in targets)


def _aliases(tree: ast.Module) -> Iterator[tuple[str, str, int]]:
    """Module-level names bound to a limit's name (``X = MAX_CONCURRENCY``, ``X = worker.MAX_CONCURRENCY``)."""
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            for value in values:
                name = (
                    value.id if isinstance(value, ast.Name) else value.attr if isinstance(value, ast.Attribute) else ""
                )
                if name in LIMIT_NAMES:
                    yield ast.unparse(node).split("=")[0].strip(), name, node.lineno


@functools.cache
def _product_modules() -> dict[Path, ast.Module]:
    """Every module of the product and its syntax tree, parsed once per test process (the tests only read them)."""
    paths = sorted(path for folder in PRODUCT for path in (REPO_ROOT / folder).rglob("*.py"))
    return {path: ast.parse(path.read_text()) for path in paths}


@functools.cache
def _numbers_written() -> list[tuple[str, float, int]]:
    """Every number written in the product: (module, value, line)."""
    return [
        (str(path.relative_to(REPO_ROOT)), number, line)
        for path, tree in _product_modules().items()
        for number, line in _numbers(tree)
    ]


def _where(value: float) -> list[str]:
    return [f"{module}:{line}" for module, number, line in _numbers_written() if number == value]


@pytest.mark.parametrize("value", sorted(HOMES), ids=[HOMES[value][0] for value in sorted(HOMES)])
def test_each_shared_limit_is_written_once_in_its_contract(value: int) -> None:
    # GIVEN a shared limit and its home module
    name, home = HOMES[value]

    # WHEN every number written in the product is read
    places = _where(value)

    # THEN the limit's value is written once, in its home; every other place imports the name
    assert [place.partition(":")[0] for place in places] == [home], f"{name} = {value} written at {places}"


def test_the_worker_concurrency_limit_has_one_home_and_one_name() -> None:
    # GIVEN every module of the product
    # WHEN the assignments to a name of the worker's concurrency limit are read
    homes = [
        f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
        for path, tree in _product_modules().items()
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        and "CONCURRENCY" in ast.unparse(node).split("=")[0]
        and _value(node.value) == worker.MAX_CONCURRENCY
    ]

    # THEN there is one, in the worker's contract
    assert [home.partition(":")[0] for home in homes] == ["sqs_decoupling/contracts/worker.py"], homes


def test_no_module_gives_a_limit_a_second_name() -> None:
    # GIVEN every module of the product WHEN its module-level names are read
    aliases = [
        f"{path.relative_to(REPO_ROOT)}:{line}: {alias} = {name}"
        for path, tree in _product_modules().items()
        for alias, name, line in _aliases(tree)
    ]

    # THEN none is bound to a limit's name: a limit has one name from cdk.json to the runtime's parser
    assert aliases == []


def test_the_scan_finds_a_limit_however_it_is_written() -> None:
    # GIVEN a module that writes the visibility maximum as hours, a video size in MiB and an alias
    tree = ast.parse(
        "CAP = 12 * 3600\nSIZE = 200 * MIB\nMIB = 1024 * 1024\nLIMIT = worker.MAX_CONCURRENCY\n"
        "def f(x=(1, 43_200)): ...\n"
    )

    # WHEN its numbers and aliases are read
    numbers = {value for value, _ in _numbers(tree)}

    # THEN each is found, and the unit's own definition is not a number of its own
    assert {43_200, 200 * media.MIB, 1} <= numbers
    assert 1024 * 1024 not in numbers
    assert [(alias, name) for alias, name, _ in _aliases(tree)] == [("LIMIT", "MAX_CONCURRENCY")]
