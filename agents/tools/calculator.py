"""`math.calculate:v1`: arithmetic on Decimal through an allow-list of syntax; never eval."""

from __future__ import annotations

import ast
import decimal
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from agents.errors import ToolInputError
from agents.tools import Tool, ToolContext

MAX_EXPRESSION = 500
MAX_EXPONENT = 100
MAX_DIGITS = 60  # the result's magnitude: 10**60 is already no answer a person can read
MAX_DEPTH = 30
_CONTEXT = decimal.Context(prec=40, Emax=10_000, Emin=-10_000, traps=[decimal.DivisionByZero, decimal.InvalidOperation])

_BINARY: dict[type[ast.operator], Callable[[Decimal, Decimal], Decimal]] = {
    ast.Add: lambda a, b: _CONTEXT.add(a, b),
    ast.Sub: lambda a, b: _CONTEXT.subtract(a, b),
    ast.Mult: lambda a, b: _CONTEXT.multiply(a, b),
    ast.Div: lambda a, b: _CONTEXT.divide(a, b),
    ast.FloorDiv: lambda a, b: _CONTEXT.divide_int(a, b),
    ast.Mod: lambda a, b: _CONTEXT.remainder(a, b),
}
_FUNCTIONS: dict[str, Callable[..., Decimal]] = {
    "sqrt": lambda x: _CONTEXT.sqrt(x),
    "abs": lambda x: abs(x),
    "min": lambda *xs: min(xs),
    "max": lambda *xs: max(xs),
    "round": lambda x, n=Decimal(0): x.quantize(Decimal(1).scaleb(-int(n)), context=_CONTEXT),
}
_CONSTANTS = {
    "pi": Decimal("3.141592653589793238462643383279502884197"),
    "e": Decimal("2.718281828459045235360287471352662497757"),
}


def _bounded(value: Decimal) -> Decimal:
    if not value.is_finite():  # a float literal such as 1e999999 parses as infinity
        raise ToolInputError("result is not a finite number")
    if value != 0 and value.adjusted() > MAX_DIGITS:
        raise ToolInputError(f"result exceeds 10^{MAX_DIGITS}")
    return value


def _power(base: Decimal, exponent: Decimal) -> Decimal:
    if exponent != exponent.to_integral_value() or abs(exponent) > MAX_EXPONENT:
        raise ToolInputError(f"exponents must be whole numbers within ±{MAX_EXPONENT}")
    return _CONTEXT.power(base, exponent)


def _call(node: ast.Call, depth: int) -> Decimal:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
        raise ToolInputError(f"only the functions {sorted(_FUNCTIONS)} may be called")
    args = [_eval(arg, depth + 1) for arg in node.args]
    if not args or len(args) > 10:
        raise ToolInputError(f"{node.func.id} takes 1 to 10 arguments")
    return _FUNCTIONS[node.func.id](*args)


def _eval(node: ast.AST, depth: int = 0) -> Decimal:
    if depth > MAX_DEPTH:
        raise ToolInputError("expression is nested too deeply")
    if isinstance(node, ast.Expression):
        return _eval(node.body, depth + 1)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(Decimal(str(node.value)))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _bounded(_power(_eval(node.left, depth + 1), _eval(node.right, depth + 1)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _bounded(_BINARY[type(node.op)](_eval(node.left, depth + 1), _eval(node.right, depth + 1)))
    if isinstance(node, ast.Call):
        return _bounded(_call(node, depth))
    raise ToolInputError(f"{type(node).__name__} is not allowed in a calculation")


def render(value: Decimal) -> str:
    """A plain decimal string: no exponent, no trailing zeros."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(_CONTEXT), "f")


def calculate(expression: str) -> Decimal:
    """The value of an arithmetic expression; ToolInputError for anything outside the allow-list."""
    text = expression.replace("×", "*").replace("÷", "/").replace("^", "**").strip()
    if not text or len(text) > MAX_EXPRESSION:
        raise ToolInputError(f"expression must have 1 to {MAX_EXPRESSION} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ToolInputError(f"not an arithmetic expression: {exc.msg}") from None
    try:
        return _eval(tree)
    except (decimal.DivisionByZero, decimal.InvalidOperation, decimal.Overflow) as exc:
        raise ToolInputError(f"arithmetic error: {type(exc).__name__}") from None


def _run(args: dict[str, Any], _context: ToolContext) -> dict[str, Any]:
    value = calculate(args["expression"])
    return {"expression": args["expression"], "value": render(value)}


TOOL = Tool(
    name="math.calculate",
    version="v1",
    description="Arithmetic on decimals: + - * / // % **, parentheses, sqrt abs min max round, pi e.",
    schema={
        "type": "object",
        "properties": {"expression": {"type": "string", "minLength": 1, "maxLength": MAX_EXPRESSION}},
        "required": ["expression"],
        "additionalProperties": False,
    },
    run=_run,
)
