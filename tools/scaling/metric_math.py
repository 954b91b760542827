"""The part of CloudWatch metric math that scaling alarms use: + - * /, comparisons, IF(condition, a, b).

An expression the simulator cannot evaluate fails with its text, so a new alarm shape is noticed, never guessed.
A division by zero gives no data point (None), as CloudWatch drops it.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping

Value = float | None

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_COMPARE: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


class UnsupportedExpression(ValueError):
    """A metric math expression outside the subset above."""


def evaluate(expression: str, values: Mapping[str, Value]) -> Value:
    """The value of ``expression`` with the metric ids in ``values`` (None = no data point)."""
    return _eval(_parse(expression), values, expression)


@functools.cache
def _parse(expression: str) -> ast.expr:
    """The expression's tree, parsed once: an alarm's expression is evaluated at every simulated minute (the cost
    chart: 40,000 times), and the tree is only read."""
    try:
        return ast.parse(expression, mode="eval").body
    except SyntaxError as error:
        raise UnsupportedExpression(f"cannot parse metric math {expression!r}: {error.msg}") from None


def _eval(node: ast.expr, values: Mapping[str, Value], text: str) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in values:
            raise UnsupportedExpression(f"metric math {text!r} uses {node.id!r}, which no query defines")
        return values[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, values, text), _eval(node.right, values, text)
        if left is None or right is None or (isinstance(node.op, ast.Div) and right == 0):
            return None
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left, right = _eval(node.left, values, text), _eval(node.comparators[0], values, text)
        if left is None or right is None:
            return None
        return 1.0 if _COMPARE[type(node.ops[0])](left, right) else 0.0
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "IF" and len(node.args) == 3:
        condition = _eval(node.args[0], values, text)
        if condition is None:
            return None
        return _eval(node.args[1] if condition else node.args[2], values, text)
    raise UnsupportedExpression(f"metric math {text!r}: {ast.unparse(node)!r} is not supported by the simulator")
