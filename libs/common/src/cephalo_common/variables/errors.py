"""Errors and limits of the template engine.

Every failure is a value with a position and a reason, so save-time validation and
deploy-time evaluation can report it precisely; nothing here is meant to escape as an
exception from the public entry points.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    SYNTAX = "syntax"
    UNTERMINATED_BLOCK = "unterminated_block"
    UNMATCHED_CLOSE = "unmatched_close"
    ILLEGAL_CHARACTER = "illegal_character"
    UNKNOWN_FILTER = "unknown_filter"
    EMPTY_NAME = "empty_name"
    TEMPLATE_TOO_LARGE = "template_too_large"
    NESTING_TOO_DEEP = "nesting_too_deep"
    OUTPUT_TOO_LARGE = "output_too_large"
    STEP_BUDGET_EXHAUSTED = "step_budget_exhausted"
    CYCLE = "cycle"


@dataclass(frozen=True, slots=True)
class TemplateError:
    """One problem in a template (or a variable name): where it is and why."""

    code: ErrorCode
    message: str
    position: int
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


def locate(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of a 0-based offset (a `\\n` ends a line)."""
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    start = text.rfind("\n", 0, position) + 1
    return line, position - start + 1


def error_at(text: str, position: int, code: ErrorCode, message: str) -> TemplateError:
    line, column = locate(text, position)
    return TemplateError(code=code, message=message, position=position, line=line, column=column)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep any input from exhausting memory, the stack or the CPU.

    `max_depth` counts nested blocks (`#{if}`, `#{each}`, filters options, indexers,
    parentheses) and nested variable-in-variable evaluations together; `max_steps`
    counts tokens evaluated and variable lookups. The defaults are generous for real
    deployment scripts and tiny next to what would hurt a service.
    """

    max_template_chars: int = 256 * 1024
    max_output_chars: int = 4 * 1024 * 1024
    max_depth: int = 40
    max_steps: int = 250_000
    max_regex_input_chars: int = 100_000
    max_regex_pattern_chars: int = 1_000


DEFAULT_LIMITS = Limits()


class TemplateSyntaxError(ValueError):
    """Raised by `parse` only; carries the same errors `validate` returns."""

    def __init__(self, errors: list[TemplateError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))
