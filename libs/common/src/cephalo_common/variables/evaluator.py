"""Evaluating templates against variables the way Octostache's `VariableDictionary` does.

The model is Octostache's: a chain of scopes (the variables, then one scope per `#{each}`
iteration); looking a path up walks the innermost scope and falls back to the outer one;
a value that is itself a template is evaluated (in a scope whose parent is where the value
was found) every time it is read; a path that reaches into a JSON value walks the JSON.
A path that is read again while it is still being read is a self-referencing loop.

What is not Octostache's: every run is bounded (`Limits`) and no failure escapes. A cycle,
exhausted budget or oversize output ends the run with a `TemplateError` (and no text); a
syntax error returns the template unchanged, as Octostache does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cephalo_common.variables import filters, json_values
from cephalo_common.variables.ast import (
    CalcConstant,
    CalcNode,
    Calculation,
    CalcVariable,
    Conditional,
    Expression,
    FilterCall,
    Identifier,
    Indexer,
    Repetition,
    Step,
    Substitution,
    Symbol,
    Text,
    Token,
    fold,
)
from cephalo_common.variables.binding import Binding, build_binding, each_locals
from cephalo_common.variables.errors import (
    DEFAULT_LIMITS,
    ErrorCode,
    Limits,
    TemplateError,
    error_at,
)
from cephalo_common.variables.filters import FilterContext
from cephalo_common.variables.numbers import format_double, parse_double
from cephalo_common.variables.parser import try_parse

_OUTPUT_FACTOR = 8
SymbolKey = tuple[tuple[str, str, int], ...]


def is_truthy(value: str) -> bool:
    """Octostache: false is `""`, `"0"`, and (trimmed, any case) `no` and `false`."""
    trimmed = value.strip().lower()
    return value not in ("", "0") and trimmed not in ("no", "false")


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of evaluating one template, with everything that went wrong.

    `text` is None when the run was refused (a cycle, a limit) or when the result is only
    the output of the `null` filter. `missing` lists the tokens that could not be resolved
    and were echoed (Octostache's "unable to be evaluated" list).
    """

    text: str | None
    missing: tuple[str, ...] = ()
    errors: tuple[TemplateError, ...] = ()

    @property
    def ok(self) -> bool:
        return self.text is not None and not self.missing and not self.errors


class _Abort(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code = code
        self.message = message


class _Cycle(Exception):
    def __init__(self, symbol: Symbol, chain: str) -> None:
        self.symbol = symbol
        self.chain = chain


class _Scope:
    __slots__ = ("binding", "parent", "stack")

    def __init__(self, binding: Binding, parent: _Scope | None) -> None:
        self.binding = binding
        self.parent = parent
        self.stack: list[tuple[SymbolKey, Symbol]] = []


@dataclass
class _Frame:
    """What one level of evaluation collects for its caller: unresolved tokens, `null`s."""

    missing: list[str] = field(default_factory=list)
    nulls: int = 0


class _Writer:
    """Output with the bounds checked at every write (nested buffers count towards a total)."""

    __slots__ = ("parts", "run", "size")

    def __init__(self, run: _Run) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.run = run

    def write(self, text: str) -> None:
        self.size += len(text)
        self.run.written += len(text)
        limit = self.run.limits.max_output_chars
        if self.size > limit or self.run.written > limit * _OUTPUT_FACTOR:
            raise _Abort(ErrorCode.OUTPUT_TOO_LARGE, f"the output exceeds {limit} characters")
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts)


def _key(steps: tuple[Step, ...]) -> SymbolKey:
    """Identity of a path for loop detection: its steps and where each was written.

    Octostache compares steps with their positions in the template they came from, so the
    same path read from two different places is not (yet) a loop; some JSON values that
    refer to their own siblings rely on that. Names compare case-insensitively here.
    """
    key: list[tuple[str, str, int]] = []
    for step in steps:
        if isinstance(step, Identifier):
            key.append(("name", fold(step.text), step.position))
        elif step.symbol is not None:
            key.append(("lookup", fold(str(step.symbol)), step.position))
        else:
            key.append(("index", fold(step.index or ""), step.position))
    return tuple(key)


_UNRESOLVABLE = Binding()


class _Run:
    """One evaluation: its budget, its cache of values read at the top scope, its errors."""

    def __init__(self, root: Binding, limits: Limits, context: FilterContext) -> None:
        self.root = root
        self.limits = limits
        self.context = context
        self.steps = 0
        self.depth = 0
        self.written = 0
        self.swallowed = 0
        self.cache: dict[int, tuple[Binding, Binding, list[str]]] = {}

    # -- budget --------------------------------------------------------------------------

    def tick(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise _Abort(
                ErrorCode.STEP_BUDGET_EXHAUSTED,
                f"evaluation took more than {self.limits.max_steps} steps",
            )

    def descend(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise _Abort(
                ErrorCode.NESTING_TOO_DEEP,
                f"blocks and variable references are nested more than {self.limits.max_depth} deep",
            )

    # -- lookups -------------------------------------------------------------------------

    def check_cycle(self, scope: _Scope, key: SymbolKey, symbol: Symbol) -> None:
        ancestor: _Scope | None = scope
        while ancestor is not None:
            if any(entry[0] == key for entry in ancestor.stack):
                chain = " -> ".join(str(entry[1]) for entry in ancestor.stack)
                raise _Cycle(symbol, f"{chain} -> {symbol}")
            ancestor = ancestor.parent

    def walk(self, scope: _Scope, symbol: Symbol) -> tuple[Binding | None, list[str]]:
        """Octostache's `WalkTo`: this scope, then the outer one; then evaluate the value."""
        key = _key(symbol.steps)
        self.check_cycle(scope, key, symbol)
        self.tick()
        scope.stack.append((key, symbol))
        try:
            steps = self.resolve_indexers(scope, symbol.steps)
            node = scope.binding
            for step in steps:
                found = self.step(scope, node, step)
                if found is _UNRESOLVABLE:
                    return None, []
                if found is None:
                    if scope.parent is None:
                        return None, []
                    return self.walk(scope.parent, Symbol(steps, symbol.position))
                node = found
            return self.value(scope, node)
        finally:
            scope.stack.pop()

    def resolve_indexers(self, scope: _Scope, steps: tuple[Step, ...]) -> tuple[Step, ...]:
        """`A[#{B}]`: look `B` up first (its own unresolved tokens are not reported)."""
        if not any(isinstance(step, Indexer) and step.symbol is not None for step in steps):
            return steps
        resolved: list[Step] = []
        for step in steps:
            if isinstance(step, Indexer) and step.symbol is not None:
                found, _ = self.walk(scope, step.symbol)
                if found is not None:
                    step = Indexer(found.item, None, step.position)
            resolved.append(step)
        return tuple(resolved)

    def step(self, scope: _Scope, node: Binding, step: Step) -> Binding | None:
        if isinstance(step, Identifier):
            child = node.children.get(fold(step.text))
            return child if child is not None else self.json_child(scope, node, step.text)
        if step.symbol is not None or step.index is None:
            return _UNRESOLVABLE
        if step.index == "*" and node.indexable:
            return next(iter(node.indexable.values()))
        child = node.indexable.get(fold(step.index))
        return child if child is not None else self.json_child(scope, node, step.index)

    def json_child(self, scope: _Scope, node: Binding, key: str) -> Binding | None:
        """Octostache's `TryCustomParsers`: walk into a JSON value."""
        if not node.item or not key:
            return None
        text: str | None = node.item
        if "#{" in node.item:
            try:
                text = self.value(scope, node)[0].item
            except _Cycle:
                self.swallowed += 1
                return None
        container = json_values.read_container(text or "")
        if container is None:
            return None
        found = json_values.child(container, key)
        return None if found is None else Binding(found)

    def value(self, scope: _Scope, node: Binding) -> tuple[Binding, list[str]]:
        """Octostache's `ParseTemplate`: a value that is a template is evaluated when read."""
        item = node.item
        if item is None:
            return node, []
        if "#{" not in item:
            return Binding(item), []
        if len(item) > self.limits.max_template_chars:
            raise _Abort(
                ErrorCode.TEMPLATE_TOO_LARGE,
                f"a variable's value is {len(item)} characters long; the limit is "
                f"{self.limits.max_template_chars}",
            )
        template = try_parse(item, self.limits)
        if isinstance(template, TemplateError):
            return node, []
        cacheable = scope.parent is None
        cached = self.cache.get(id(node)) if cacheable else None
        if cached is not None and cached[0] is node:
            return cached[1], cached[2]
        swallowed = self.swallowed
        frame = _Frame()
        out = _Writer(self)
        self.descend()
        try:
            self.tokens(template.tokens, _Scope(Binding(), scope), out, frame)
        finally:
            self.depth -= 1
        result = Binding(out.text())
        if cacheable and self.swallowed == swallowed:
            self.cache[id(node)] = (node, result, frame.missing)
        return result, frame.missing

    def resolve_all(self, scope: _Scope, symbol: Symbol, frame: _Frame) -> list[Binding]:
        """What `#{each}` iterates: indexed children, a JSON array/object, or a comma list."""
        node, missing = self.walk(scope, symbol)
        frame.missing.extend(missing)
        if node is None:
            return []
        if node.indexable:
            return list(node.indexable.values())
        if node.item is None:
            return []
        container = json_values.read_container(node.item)
        if isinstance(container, list):
            return [Binding(json_values.as_text(element)) for element in container]
        if isinstance(container, dict):
            items: list[Binding] = []
            for name, element in container.items():
                item = Binding(name)
                item.children = {
                    "key": Binding(name),
                    "value": Binding(json_values.as_text(element)),
                }
                items.append(item)
            return items
        return [Binding(part) for part in node.item.split(",")]

    # -- tokens --------------------------------------------------------------------------

    def tokens(self, tokens: tuple[Token, ...], scope: _Scope, out: _Writer, frame: _Frame) -> None:
        for token in tokens:
            self.tick()
            if isinstance(token, Text):
                out.write(token.text)
            elif isinstance(token, Substitution):
                self.substitution(token, scope, out, frame)
            elif isinstance(token, Conditional):
                self.conditional(token, scope, out, frame)
            elif isinstance(token, Repetition):
                self.repetition(token, scope, out, frame)
            else:
                self.calculation(token, scope, out, frame)

    def nested(self, tokens: tuple[Token, ...], scope: _Scope, out: _Writer, frame: _Frame) -> None:
        self.descend()
        try:
            self.tokens(tokens, scope, out, frame)
        finally:
            self.depth -= 1

    def substitution(self, token: Substitution, scope: _Scope, out: _Writer, frame: _Frame) -> None:
        value = self.expression(token.expression, scope, frame)
        if value is not None:
            out.write(value)
            return
        expression = token.expression
        if isinstance(expression, FilterCall) and expression.function.lower() == "null":
            frame.nulls += 1
            return
        echo = str(token)
        frame.missing.append(echo)
        out.write(echo)

    def expression(self, expression: Expression, scope: _Scope, frame: _Frame) -> str | None:
        if isinstance(expression, Symbol):
            node, missing = self.walk(scope, expression)
            frame.missing.extend(missing)
            return node.item if node is not None else None
        argument = self.expression(expression.argument, scope, frame)
        options = [self.option(option, scope, frame) for option in expression.options]
        self.tick()
        return filters.invoke(expression.function, argument, options, self.context)

    def option(self, token: Token, scope: _Scope, frame: _Frame) -> str:
        if isinstance(token, Text):
            return token.text
        out = _Writer(self)
        self.nested((token,), _Scope(Binding(), scope), out, frame)
        return out.text()

    def operand(self, expression: Expression, scope: _Scope, frame: _Frame) -> str | None:
        """A condition's side: a missing variable reads as "" (a failed filter as None)."""
        if isinstance(expression, Symbol):
            node, missing = self.walk(scope, expression)
            frame.missing.extend(missing)
            return (node.item or "") if node is not None else ""
        return self.expression(expression, scope, frame)

    def conditional(self, token: Conditional, scope: _Scope, out: _Writer, frame: _Frame) -> None:
        condition = token.condition
        left = self.operand(condition.left, scope, frame)
        if left is None:
            out.write(str(token))
            frame.missing.append(str(condition.left))
            return
        if condition.equal is None:
            chosen = is_truthy(left)
        elif condition.literal is not None:
            chosen = (left == condition.literal) == condition.equal
        else:
            assert condition.right is not None
            right = self.operand(condition.right, scope, frame)
            if right is None:
                out.write(str(token))
                frame.missing.append(str(condition.right))
                return
            chosen = (left == right) == condition.equal
        self.nested(token.truthy if chosen else token.falsy, scope, out, frame)

    def repetition(self, token: Repetition, scope: _Scope, out: _Writer, frame: _Frame) -> None:
        items = self.resolve_all(scope, token.collection, frame)
        for index, item in enumerate(items):
            local = each_locals(token.enumerator.text, item, index, len(items))
            self.nested(token.body, _Scope(local, scope), out, frame)

    def calculation(self, token: Calculation, scope: _Scope, out: _Writer, frame: _Frame) -> None:
        def read(symbol: Symbol) -> str | None:
            node, missing = self.walk(scope, symbol)
            frame.missing.extend(missing)
            return node.item if node is not None else None

        value = calculate(token.expression, read)
        if value is None:
            echo = str(token)
            frame.missing.append(echo)
            out.write(echo)
        else:
            out.write(format_double(value))


def calculate(node: CalcNode, read: Callable[[Symbol], str | None]) -> float | None:
    """`#{calc}` arithmetic in doubles; None (echo) when a variable is missing or not a number."""
    if isinstance(node, CalcConstant):
        return node.value
    if isinstance(node, CalcVariable):
        text = read(node.symbol)
        return None if text is None else parse_double(text)
    left = calculate(node.left, read)
    if left is None:
        return None
    right = calculate(node.right, read)
    if right is None:
        return None
    if node.operator == "+":
        return left + right
    if node.operator == "-":
        return left - right
    if node.operator == "*":
        return left * right
    if node.operator == "/":
        return _divide(left, right)
    return _modulo(left, right)


def _divide(left: float, right: float) -> float:
    """IEEE division, as .NET does it (no exception on zero)."""
    if right != 0:
        return left / right
    if left == 0 or math.isnan(left):
        return math.nan
    return math.copysign(math.inf, left) * math.copysign(1.0, right)


def _modulo(left: float, right: float) -> float | None:
    """Whole numbers only (a long on .NET); the sign follows the dividend."""
    limit = 2.0**63
    if not all(math.isfinite(v) and v.is_integer() and -limit <= v < limit for v in (left, right)):
        return None
    if right == 0:
        return None
    dividend, divisor = int(left), int(right)
    remainder = abs(dividend) % abs(divisor)
    return float(-remainder if dividend < 0 else remainder)


class VariableDictionary:
    """A fixed set of variables to evaluate templates against (Octostache's class of the name).

    Build it once and evaluate many templates: the variable tree is built here.
    """

    def __init__(
        self,
        variables: Mapping[str, str],
        *,
        limits: Limits = DEFAULT_LIMITS,
        filter_context: FilterContext | None = None,
    ) -> None:
        self._raw = {fold(name): value for name, value in variables.items()}
        self._root = build_binding(variables)
        self._limits = limits
        self._context = filter_context or FilterContext(limits=limits)

    def get_raw(self, name: str) -> str | None:
        return self._raw.get(fold(name))

    def render(self, template: str) -> Evaluation:
        """Evaluate with a full report: the text, the unresolved tokens and any errors."""
        limits = self._limits
        if len(template) > limits.max_template_chars:
            error = error_at(
                template,
                limits.max_template_chars,
                ErrorCode.TEMPLATE_TOO_LARGE,
                f"the template is {len(template)} characters long; the limit is "
                f"{limits.max_template_chars}",
            )
            return Evaluation(None, errors=(error,))
        if "#{" not in template:
            return Evaluation(template)
        parsed = try_parse(template, limits)
        if isinstance(parsed, TemplateError):
            refused = parsed.code is ErrorCode.NESTING_TOO_DEEP
            return Evaluation(None if refused else template, errors=(parsed,))
        run = _Run(self._root, limits, self._context)
        out = _Writer(run)
        frame = _Frame()
        scope = _Scope(self._root, None)
        position = 0
        try:
            for token in parsed.tokens:
                position = token.position
                run.tokens((token,), scope, out, frame)
        except _Abort as abort:
            return Evaluation(
                None, errors=(error_at(template, position, abort.code, abort.message),)
            )
        except _Cycle as cycle:
            message = (
                f'An attempt to parse the variable symbol "{cycle.symbol}" appears to have '
                f"resulted in a self referencing loop ({cycle.chain}). Ensure that recursive "
                "loops do not exist in the variable values."
            )
            return Evaluation(
                None, errors=(error_at(template, position, ErrorCode.CYCLE, message),)
            )
        except RecursionError:
            message = "blocks and variable references are nested too deep"
            error = error_at(template, position, ErrorCode.NESTING_TOO_DEEP, message)
            return Evaluation(None, errors=(error,))
        text = out.text()
        missing = tuple(dict.fromkeys(frame.missing))
        return Evaluation(None if frame.nulls and not text else text, missing)

    def evaluate(self, template: str) -> str | None:
        return self.render(template).text

    def get(self, name: str) -> str | None:
        raw = self.get_raw(name)
        return None if raw is None else self.evaluate(raw)

    def evaluate_truthy(self, template: str) -> bool:
        evaluation = self.render(template)
        return evaluation.ok and evaluation.text is not None and is_truthy(evaluation.text)


def render(
    template: str, variables: Mapping[str, str], *, limits: Limits = DEFAULT_LIMITS
) -> Evaluation:
    """`evaluate` with the full report (unresolved tokens, errors with positions)."""
    return VariableDictionary(variables, limits=limits).render(template)


def evaluate(template: str, variables: Mapping[str, str]) -> str | None:
    """Octostache's `Evaluate`: unresolved tokens are echoed, a syntax error returns the
    template unchanged; None when evaluation is refused (a cycle, a limit) or only `null`."""
    return VariableDictionary(variables).evaluate(template)


def evaluate_value(name: str, variables: Mapping[str, str]) -> str | None:
    """Octostache's `Get`: the evaluated value of one variable, None when it is undefined."""
    return VariableDictionary(variables).get(name)


def evaluate_truthy(template: str, variables: Mapping[str, str]) -> bool:
    """Octostache's `EvaluateTruthy`: false when anything is unresolved or refused."""
    return VariableDictionary(variables).evaluate_truthy(template)
