"""Save-time validation: every problem in a template or a variable name, with its position.

Octostache is lenient where a user would rather be told: an unterminated `#{if X}` is
silently read as a variable named `if X`, an unknown filter is echoed at deploy time. These
checks report both, on top of the syntax errors Octostache itself rejects.
"""

from __future__ import annotations

from cephalo_common.variables import filters
from cephalo_common.variables.ast import (
    Conditional,
    Expression,
    FilterCall,
    Identifier,
    Repetition,
    Substitution,
    Symbol,
    Token,
)
from cephalo_common.variables.errors import (
    DEFAULT_LIMITS,
    ErrorCode,
    Limits,
    TemplateError,
    error_at,
)
from cephalo_common.variables.parser import diagnose_block, looks_like_block, try_parse

_NAME_PUNCTUATION = frozenset(".-_: ")
"""`:` as in `Logging:LogLevel:Default`, the JSON path form structured replacement reads."""


def validate(template: str, limits: Limits = DEFAULT_LIMITS) -> list[TemplateError]:
    """All problems found in `template`, in order; empty when it is fine to save."""
    parsed = try_parse(template, limits)
    if isinstance(parsed, TemplateError):
        return [parsed]
    errors: list[TemplateError] = []
    _check_tokens(template, parsed.tokens, errors, limits)
    return sorted(errors, key=lambda error: error.position)


def _check_tokens(
    template: str, tokens: tuple[Token, ...], errors: list[TemplateError], limits: Limits
) -> None:
    for token in tokens:
        if isinstance(token, Substitution):
            _check_substitution(template, token, errors, limits)
        elif isinstance(token, Conditional):
            condition = token.condition
            for side in (condition.left, condition.right):
                if side is not None:
                    _check_expression(template, side, errors, limits)
            _check_tokens(template, token.truthy, errors, limits)
            _check_tokens(template, token.falsy, errors, limits)
        elif isinstance(token, Repetition):
            _check_expression(template, token.collection, errors, limits)
            _check_tokens(template, token.body, errors, limits)


def _check_substitution(
    template: str, token: Substitution, errors: list[TemplateError], limits: Limits
) -> None:
    base: Expression = token.expression
    while isinstance(base, FilterCall):
        base = base.argument
    if isinstance(base, Symbol) and looks_like_block(base):
        reason = diagnose_block(template, token.position, limits)
        errors.append(
            reason
            or error_at(template, token.position, ErrorCode.SYNTAX, f"malformed block {token}")
        )
        return
    first = base.steps[0] if isinstance(base, Symbol) and base.steps else None
    if isinstance(first, Identifier) and len(base.steps) == 1:
        word = first.text.lower()
        if word == "else" or word.startswith("elseif "):
            errors.append(
                error_at(
                    template,
                    token.position,
                    ErrorCode.SYNTAX,
                    f"#{{{first.text}}} outside an #{{if}} block (it would be read as a "
                    "variable name)",
                )
            )
            return
    _check_expression(template, token.expression, errors, limits)


def _check_expression(
    template: str, expression: Expression, errors: list[TemplateError], limits: Limits
) -> None:
    if isinstance(expression, Symbol):
        for step in expression.steps:
            if not isinstance(step, Identifier) and step.symbol is not None:
                _check_expression(template, step.symbol, errors, limits)
        return
    _check_expression(template, expression.argument, errors, limits)
    if not filters.is_known(expression.function):
        errors.append(
            error_at(
                template,
                expression.position,
                ErrorCode.UNKNOWN_FILTER,
                f"unknown filter {expression.function!r}",
            )
        )
    _check_tokens(template, expression.options, errors, limits)


def validate_variable_name(name: str) -> list[TemplateError]:
    """Problems with a variable's name (§1.1), each with its position in the name.

    A name is parts joined by `.`; a part uses letters, digits, `-`, `_` and spaces and may
    be followed by indexes such as `[Web 01]` (anything but brackets and `#{` inside, nested
    brackets allowed). Anything else cannot be referenced from a template.
    """
    if not name.strip():
        return [error_at(name, 0, ErrorCode.EMPTY_NAME, "a variable name cannot be empty")]
    errors: list[TemplateError] = []
    i, n = 0, len(name)
    part_start = 0
    while i <= n:
        if i == n or name[i] == ".":
            if i == part_start:
                errors.append(
                    error_at(
                        name,
                        i,
                        ErrorCode.SYNTAX,
                        "empty part in the name (two dots, or a dot at either end)",
                    )
                )
            part_start = i + 1
            i += 1
            continue
        char = name[i]
        if char == "[":
            if i == part_start:
                errors.append(
                    error_at(name, i, ErrorCode.SYNTAX, "an index needs a name before it")
                )
            end = _index_end(name, i, errors)
            if end < n and name[end] not in ".[":
                errors.append(
                    error_at(name, end, ErrorCode.SYNTAX, "expected '.' or '[' after an index")
                )
            i = end
            if i < n and name[i] == ".":
                part_start = i + 1
                i += 1
            elif i >= n:
                break
            else:
                part_start = i
            continue
        if char == "]":
            errors.append(error_at(name, i, ErrorCode.SYNTAX, "']' without a matching '['"))
        elif not (char.isalnum() or char in _NAME_PUNCTUATION):
            errors.append(
                error_at(
                    name,
                    i,
                    ErrorCode.ILLEGAL_CHARACTER,
                    f"illegal character {char!r} in a variable name (use letters, digits, '.', "
                    "':', '-', '_', spaces and [index])",
                )
            )
        i += 1
    return errors


def _index_end(name: str, start: int, errors: list[TemplateError]) -> int:
    """Position after the `]` closing the index opened at `start` (nested brackets allowed)."""
    depth = 0
    i = start
    while i < len(name):
        if name.startswith("#{", i):
            errors.append(
                error_at(name, i, ErrorCode.ILLEGAL_CHARACTER, "'#{' is not allowed in an index")
            )
        if name[i] == "[":
            depth += 1
        elif name[i] == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    errors.append(
        error_at(name, start, ErrorCode.UNTERMINATED_BLOCK, "unterminated '[': expected ']'")
    )
    return len(name)
