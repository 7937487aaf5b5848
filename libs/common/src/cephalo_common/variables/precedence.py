"""Which value of each variable wins, and why (the data behind "preview and explain").

Among the values that apply to a context (see `scopes`), the winner is decided by these
rules, in order; the first one that tells two values apart decides:

1. a system variable beats any user value;
2. the more specific dimension: each value's matched levels are sorted (1 = step … 10 =
   project; an unscoped value counts as 11) and compared element by element;
3. more dimensions ("like CSS"): when one list is a prefix of the other, the longer wins;
4. a project value beats a library variable set value;
5. an earlier-included library set beats a later one;
6. the earlier declaration wins (then the earlier position in the input).

Octopus calls a tie after rule 4 non-deterministic; here rules 5-6 make it deterministic
and the resolution records a warning for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from functools import cmp_to_key
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cephalo_common.variables.ast import fold
from cephalo_common.variables.scopes import (
    Level,
    ResolutionContext,
    ScopeField,
    SourceKind,
    VariableValue,
    match_scope,
)


class DecidingRule(StrEnum):
    ONLY_MATCH = "only_match"
    SYSTEM_VARIABLE = "system_variable"
    MORE_SPECIFIC_DIMENSION = "more_specific_dimension"
    MORE_DIMENSIONS = "more_dimensions"
    PROJECT_OVER_LIBRARY_SET = "project_over_library_set"
    LIBRARY_SET_ORDER = "library_set_order"
    DECLARATION_ORDER = "declaration_order"
    NO_MATCH = "no_match"


_TIE_RULES = (DecidingRule.LIBRARY_SET_ORDER, DecidingRule.DECLARATION_ORDER)


class Candidate(BaseModel):
    """One value of a variable and what happened to it."""

    model_config = ConfigDict(frozen=True)

    value: VariableValue
    outcome: Literal["won", "lost", "rejected"]
    levels: tuple[int, ...] = ()
    rule: DecidingRule | None = None
    mismatch: ScopeField | None = None
    reason: str


class ResolvedVariable(BaseModel):
    """A variable's winner (None when no value applies) and the explanation."""

    model_config = ConfigDict(frozen=True)

    name: str
    winner: VariableValue | None
    rule: DecidingRule
    explanation: str
    tie: bool = False
    candidates: tuple[Candidate, ...]

    @property
    def matched(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.outcome != "rejected")

    @property
    def rejected(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.outcome == "rejected")


class Resolution(BaseModel):
    model_config = ConfigDict(frozen=True)

    variables: dict[str, ResolvedVariable]
    warnings: tuple[str, ...] = ()

    def values(self) -> dict[str, str]:
        """Name → winning value: what `evaluate` takes."""
        return {v.name: v.winner.value for v in self.variables.values() if v.winner is not None}

    def sensitive_values(self) -> frozenset[str]:
        """The winning sensitive values: what log masking needs."""
        return frozenset(
            v.winner.value
            for v in self.variables.values()
            if v.winner is not None and v.winner.is_sensitive
        )

    def explain(self, name: str) -> ResolvedVariable | None:
        return self.variables.get(fold(name))


_Ranked = tuple[VariableValue, tuple[Level, ...], int]


def _levels_text(levels: tuple[Level, ...]) -> str:
    return " + ".join(f"{level.label} ({level.value})" for level in levels)


def compare(a: _Ranked, b: _Ranked) -> tuple[int, DecidingRule, str]:
    """Negative when `a` wins; the rule that decided and a sentence saying so."""
    value_a, levels_a, position_a = a
    value_b, levels_b, position_b = b
    system_a = value_a.source.kind is SourceKind.SYSTEM
    system_b = value_b.source.kind is SourceKind.SYSTEM
    if system_a != system_b:
        sign = -1 if system_a else 1
        return sign, DecidingRule.SYSTEM_VARIABLE, "system variables always win"
    for level_a, level_b in zip(levels_a, levels_b, strict=False):
        if level_a != level_b:
            winner, loser = sorted((level_a, level_b))
            sentence = f"{winner.label} ({winner.value}) is more specific than {loser.label} ({loser.value})"
            return (-1 if level_a < level_b else 1), DecidingRule.MORE_SPECIFIC_DIMENSION, sentence
    if len(levels_a) != len(levels_b):
        longer, shorter = (
            (levels_a, levels_b) if len(levels_a) > len(levels_b) else (levels_b, levels_a)
        )
        sentence = (
            f"{_levels_text(longer)} is scoped on more dimensions than {_levels_text(shorter)}"
        )
        return (-1 if len(levels_a) > len(levels_b) else 1), DecidingRule.MORE_DIMENSIONS, sentence
    project_a = value_a.source.kind is SourceKind.PROJECT
    project_b = value_b.source.kind is SourceKind.PROJECT
    if project_a != project_b:
        sentence = "a project value beats a library variable set value"
        return (-1 if project_a else 1), DecidingRule.PROJECT_OVER_LIBRARY_SET, sentence
    if (
        value_a.source.kind is SourceKind.LIBRARY_SET
        and value_a.source.order != value_b.source.order
    ):
        sentence = "equally specific: the library set included first wins (tie-break)"
        sign = -1 if value_a.source.order < value_b.source.order else 1
        return sign, DecidingRule.LIBRARY_SET_ORDER, sentence
    sentence = "equally specific: the value declared first wins (tie-break)"
    if value_a.declaration_index != value_b.declaration_index:
        sign = -1 if value_a.declaration_index < value_b.declaration_index else 1
        return sign, DecidingRule.DECLARATION_ORDER, sentence
    return (
        (-1 if position_a < position_b else 1 if position_a > position_b else 0),
        (DecidingRule.DECLARATION_ORDER),
        sentence,
    )


def _order(a: _Ranked, b: _Ranked) -> int:
    return compare(a, b)[0]


def resolve(values: Iterable[VariableValue], context: ResolutionContext) -> Resolution:
    """The winner of every variable for `context`, with matched and rejected candidates."""
    by_name: dict[str, list[tuple[VariableValue, int]]] = {}
    for position, value in enumerate(values):
        by_name.setdefault(fold(value.name), []).append((value, position))
    variables: dict[str, ResolvedVariable] = {}
    warnings: list[str] = []
    for key, group in by_name.items():
        resolved = _resolve_one(group, context)
        variables[key] = resolved
        if resolved.tie:
            warnings.append(f"{resolved.name}: {resolved.explanation}")
    return Resolution(variables=variables, warnings=tuple(warnings))


def _resolve_one(
    group: list[tuple[VariableValue, int]], context: ResolutionContext
) -> ResolvedVariable:
    ranked: list[_Ranked] = []
    rejected: list[Candidate] = []
    for value, position in group:
        match = match_scope(value, context)
        if match.matched:
            ranked.append((value, match.levels, position))
        else:
            rejected.append(
                Candidate(
                    value=value, outcome="rejected", mismatch=match.mismatch, reason=match.reason
                )
            )
    if not ranked:
        name = group[0][0].name
        return ResolvedVariable(
            name=name,
            winner=None,
            rule=DecidingRule.NO_MATCH,
            explanation="no value applies to this context",
            candidates=tuple(rejected),
        )
    ranked.sort(key=cmp_to_key(_order))
    winner = ranked[0]
    candidates = [Candidate(value=winner[0], outcome="won", levels=winner[1], reason="")]
    rule, explanation, tie = DecidingRule.ONLY_MATCH, "the only value that applies", False
    for index, other in enumerate(ranked[1:]):
        _, other_rule, sentence = compare(winner, other)
        candidates.append(
            Candidate(
                value=other[0], outcome="lost", levels=other[1], rule=other_rule, reason=sentence
            )
        )
        if index == 0:
            rule, explanation, tie = other_rule, sentence, other_rule in _TIE_RULES
    first = candidates[0]
    candidates[0] = first.model_copy(
        update={"rule": rule, "reason": _won_reason(winner, explanation)}
    )
    return ResolvedVariable(
        name=winner[0].name,
        winner=winner[0],
        rule=rule,
        explanation=explanation,
        tie=tie,
        candidates=(*candidates, *rejected),
    )


def _won_reason(winner: _Ranked, explanation: str) -> str:
    return f"matched at {_levels_text(winner[1])}; {explanation}"
