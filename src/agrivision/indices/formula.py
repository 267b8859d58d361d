"""A safe compiler for index formulas such as ``"g * (N - R) / (N + C1 * R - C2 * B + L)"``.

The text is parsed with :mod:`ast` and only arithmetic survives: numbers, band symbols
(``N``, ``R``, ``RE1``...), catalogue constants (``L``, ``g``...), ``+ - * / **``, unary
``-``/``+`` and parentheses, plus calls to a short whitelist of pure numpy functions
(:data:`FUNCTIONS`). The accepted tree becomes nested closures; user text is never given to
``eval``, ``exec`` or ``compile``. Kernel symbols of the catalogue (``kNN``, ``kNR``...) are
expanded into the RBF kernel ``exp(-(a - b)**2 / (2 sigma**2))``, which is why ``exp`` is on
the whitelist; no catalogue formula calls a function itself.
"""

from __future__ import annotations

import ast
import difflib
import operator
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agrivision.errors import FormulaError
from agrivision.indices.symbols import KERNEL, band_symbols, constants, kernel_pair

#: Longest formula accepted (the longest catalogue formula has 215 characters).
MAX_LENGTH = 1000
#: Deepest expression tree accepted (the deepest catalogue formula, GEMI, has 13 levels).
MAX_DEPTH = 60
#: Largest absolute constant exponent (the catalogue uses at most 4).
MAX_EXPONENT = 64.0

#: The only functions a formula may call, each with one argument.
FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
# Readable names of what is rejected, for the error message.
_CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Call: "function call",
    ast.Lambda: "lambda",
    ast.ListComp: "comprehension",
    ast.SetComp: "comprehension",
    ast.DictComp: "comprehension",
    ast.GeneratorExp: "comprehension",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.IfExp: "conditional expression",
    ast.NamedExpr: "assignment expression (:=)",
    ast.JoinedStr: "f-string",
    ast.Tuple: "tuple",
    ast.List: "list",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.Starred: "starred expression",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice",
}
_OPERATORS = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Not: "not",
}

Env = Mapping[str, Any]


@dataclass(frozen=True, eq=False)
class Formula:
    """A compiled formula: call it with a mapping of symbol -> array or number.

    ``bands`` and ``constants`` list the symbols it needs (kernel symbols expanded), in order
    of first use. Calling works on anything with numpy arithmetic (numpy, dask, xarray); it does not hide
    floating-point warnings nor replace infinities: :func:`agrivision.indices.compute` does.
    """

    text: str
    bands: tuple[str, ...]
    constants: tuple[str, ...]
    _fn: Callable[[Env], Any] = field(repr=False)

    def __call__(self, values: Env) -> Any:
        """Evaluate on ``values`` (band symbols -> arrays, constants -> numbers)."""
        missing = [s for s in (*self.bands, *self.constants) if s not in values]
        if missing:
            raise FormulaError(
                f"no value given for {', '.join(missing)}",
                source=f"formula {self.text!r}",
                fix="pass every band symbol and constant the formula uses",
            )
        return self._fn(values)

    def __dask_tokenize__(self) -> tuple[str, ...]:
        # The text and symbols determine the closures; hashing them avoids pickling closures.
        return ("agrivision.Formula", self.text, *self.constants)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from text on unpickling (dask.distributed workers): closures do not pickle.
        return (_rebuild, (self.text, self.constants))


@dataclass
class _Node:
    fn: Callable[[Env], Any]
    kind: str  # "literal" (value known now), "scalar" (numbers only) or "array"
    value: float | None = None


def compile_formula(
    text: str, *, extra_constants: Iterable[str] = (), name: str | None = None
) -> Formula:
    """Parse and compile an index formula, allowing only arithmetic on known symbols.

    Parameters
    ----------
    text
        The formula, e.g. ``"(N - R)/(N + R)"`` (catalogue band symbols, not scene names).
    extra_constants
        Names of user constants the formula may use besides the catalogue's.
    name
        The index name, used in error messages.

    Raises
    ------
    FormulaError
        For anything but numbers, known symbols, ``+ - * / **``, unary ``-``/``+``,
        parentheses and :data:`FUNCTIONS` calls; for overlong, too deeply nested or
        non-finite constant expressions and exponents beyond :data:`MAX_EXPONENT`.
    """
    return _Compiler(text, frozenset(extra_constants), name).run()


class _Compiler:
    def __init__(self, text: Any, extra: frozenset[str], name: str | None):
        self.text = text
        self.extra = extra
        shown = _shorten(text)
        self.source = f"formula {shown}" if name is None else f"index {name} = {shown}"
        self.bands: dict[str, None] = {}  # ordered sets
        self.constants: dict[str, None] = {}

    def fail(self, problem: str, node: ast.AST | None = None) -> FormulaError:
        if node is not None and isinstance(self.text, str):
            segment = ast.get_source_segment(self.text, node)
            if segment:
                problem = f"{problem} `{segment}`"
        return FormulaError(
            problem,
            source=self.source,
            fix="use only numbers, band symbols (N, R, G, RE1...), catalogue constants "
            f"(L, g, C1...), + - * / **, parentheses and {', '.join(FUNCTIONS)}(x)",
        )

    def run(self) -> Formula:
        if not isinstance(self.text, str) or not self.text.strip():
            raise self.fail("a formula must be a non-empty string")
        if len(self.text) > MAX_LENGTH:
            raise self.fail(f"formula is {len(self.text)} characters long (limit {MAX_LENGTH})")
        try:
            with warnings.catch_warnings():  # e.g. "invalid decimal literal": the error says it
                warnings.simplefilter("ignore", SyntaxWarning)
                tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as exc:
            raise self.fail(f"not a valid expression ({exc.msg})") from None
        except (ValueError, RecursionError, MemoryError) as exc:
            raise self.fail(f"cannot parse ({type(exc).__name__})") from None
        self.text = self.text.strip()  # positions in error messages refer to this text
        node = self.node(tree.body, 0)
        if node.kind != "array":
            raise self.fail("formula uses no band symbol")
        return Formula(
            text=self.text,
            bands=tuple(self.bands),
            constants=tuple(self.constants),
            _fn=node.fn,
        )

    def node(self, node: ast.AST, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise self.fail(f"formula is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if isinstance(node, ast.Name):
            return self.name(node, depth)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left = self.node(node.left, depth + 1)
            right = self.node(node.right, depth + 1)
            if isinstance(node.op, ast.Pow):
                self.check_exponent(right, node)
            if isinstance(node.op, ast.Div) and right.kind == "literal" and right.value == 0:
                raise self.fail("division by a constant zero (never finite):", node)
            return self.combine(_BINARY[type(node.op)], (left, right), node)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            operand = self.node(node.operand, depth + 1)
            return self.combine(_UNARY[type(node.op)], (operand,), node)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        op = getattr(node, "op", None)
        if op is not None and type(op) in _OPERATORS:
            raise self.fail(f"operator {_OPERATORS[type(op)]} in", node)
        what = _CONSTRUCTS.get(type(node), f"construct {type(node).__name__}")
        raise self.fail(f"{what} is not allowed:", node)

    def literal(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(f"{type(value).__name__} constant is not allowed:", node)
        try:
            number = float(value)
        except OverflowError:
            number = float("inf")
        if not np.isfinite(number):
            raise self.fail("number is not finite:", node)
        return _literal(number)

    def name(self, node: ast.Name, depth: int) -> _Node:
        sym = node.id
        if sym in band_symbols():
            self.bands.setdefault(sym)
            return _Node(lambda env: env[sym], "array")
        if sym in constants() or sym in self.extra:
            self.constants.setdefault(sym)
            return _Node(lambda env: env[sym], "scalar")
        pair = kernel_pair(sym)
        if pair is not None:
            expansion = ast.parse(KERNEL.format(a=pair[0], b=pair[1]), mode="eval").body
            return self.node(expansion, depth + 1)
        if sym in FUNCTIONS:
            raise self.fail(f"function {sym} must be called with one argument:", node)
        known = [*band_symbols(), *constants(), *self.extra]
        close = difflib.get_close_matches(sym, known, n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise self.fail(f"unknown name {sym!r}{hint}; band symbols: {', '.join(band_symbols())}")

    def call(self, node: ast.Call, depth: int) -> _Node:
        func = node.func
        if not (isinstance(func, ast.Name) and func.id in FUNCTIONS):
            raise self.fail(f"function call is not allowed (only {', '.join(FUNCTIONS)}):", node)
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise self.fail(f"{func.id}() takes exactly one positional argument:", node)
        arg = self.node(node.args[0], depth + 1)
        return self.combine(FUNCTIONS[func.id], (arg,), node)

    def check_exponent(self, exponent: _Node, node: ast.AST) -> None:
        if exponent.value is not None and abs(exponent.value) > MAX_EXPONENT:
            raise self.fail(f"exponent beyond ±{MAX_EXPONENT:g} in", node)

    def combine(self, op: Callable[..., Any], args: tuple[_Node, ...], node: ast.AST) -> _Node:
        fns = [a.fn for a in args]
        literals = [a.value for a in args if a.value is not None]
        if len(literals) == len(args):
            value = _scalar_op(op, *literals)
            if not np.isfinite(value):
                raise self.fail("constant expression is not finite:", node)
            return _literal(value)
        if all(a.kind != "array" for a in args):
            # Numbers stay Python floats (NumPy's "weak" scalars) so float32 arrays stay float32.
            return _Node(lambda env: _scalar_op(op, *(f(env) for f in fns)), "scalar")
        if len(fns) == 1:
            (f,) = fns
            return _Node(lambda env: op(f(env)), "array")
        f, g = fns
        return _Node(lambda env: op(f(env), g(env)), "array")


def _shorten(text: Any, limit: int = 120) -> str:
    # Error messages stay one readable line even for a hostile 1000-character formula.
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[: limit - 15]}... ({len(text)} chars)"


def _rebuild(text: str, extra: tuple[str, ...]) -> Formula:
    return compile_formula(text, extra_constants=extra)


def _literal(value: float) -> _Node:
    return _Node(lambda env: value, "literal", value)


def _scalar_op(op: Callable[..., Any], *args: float) -> float:
    # float64 scalars give inf/nan where Python floats would raise (1/0, overflow, (-8)**(1/3)).
    with np.errstate(all="ignore"):
        return float(op(*(np.float64(a) for a in args)))
