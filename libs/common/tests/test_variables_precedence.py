"""Scope matching and the §1.3 precedence table: every level against every other level,
multi-dimension scopes ("like CSS") and the tie-breaks, each row naming the deciding rule."""

from __future__ import annotations

from itertools import combinations

import pytest

from cephalo_common.variables import (
    DecidingRule,
    Level,
    ResolutionContext,
    ScopeField,
    SourceKind,
    VariableSource,
    VariableValue,
    match_scope,
    resolve,
    scope_problems,
    system_variable_values,
)

CONTEXT = ResolutionContext(
    environment="Production",
    machine="web01",
    machine_roles=frozenset({"web", "db"}),
    step_roles=frozenset({"web"}),
    action="deploy",
    channel="default",
    tenant="acme",
    tenant_tags=frozenset({"tier/gold"}),
    process="deployment-process",
    project="projects-1",
)

SCOPE_FOR_LEVEL: dict[Level, dict[ScopeField, frozenset[str]]] = {
    Level.ACTION: {ScopeField.ACTION: frozenset({"deploy"})},
    Level.MACHINE: {ScopeField.MACHINE: frozenset({"web01"})},
    Level.TARGETED_ROLE: {ScopeField.ROLE: frozenset({"web"})},
    Level.MACHINE_ROLE: {ScopeField.ROLE: frozenset({"db"})},
    Level.TENANT: {ScopeField.TENANT: frozenset({"acme"})},
    Level.TENANT_TAG: {ScopeField.TENANT_TAG: frozenset({"tier/gold"})},
    Level.ENVIRONMENT: {ScopeField.ENVIRONMENT: frozenset({"Production"})},
    Level.CHANNEL: {ScopeField.CHANNEL: frozenset({"default"})},
    Level.PROCESS: {ScopeField.PROCESS: frozenset({"deployment-process"})},
    Level.PROJECT: {ScopeField.PROJECT: frozenset({"projects-1"})},
    Level.UNSCOPED: {},
}
LIBRARY = VariableSource(kind=SourceKind.LIBRARY_SET, id="LibraryVariableSets-1", order=0)


def value(
    text: str, *levels: Level, index: int = 0, source: VariableSource | None = None
) -> VariableValue:
    scope: dict[ScopeField, frozenset[str]] = {}
    for level in levels:
        for field, ids in SCOPE_FOR_LEVEL[level].items():
            scope[field] = scope.get(field, frozenset()) | ids
    return VariableValue(
        name="Conn",
        value=text,
        scope=scope,
        declaration_index=index,
        source=source or VariableSource(),
    )


def test_every_level_matches_on_its_own() -> None:
    for level in Level:
        assert match_scope(value("x", level), CONTEXT).levels == (level,)


@pytest.mark.parametrize(
    ("stronger", "weaker"),
    list(combinations(sorted(Level), 2)),
    ids=[f"{a.name.lower()}-beats-{b.name.lower()}" for a, b in combinations(sorted(Level), 2)],
)
def test_each_level_beats_every_less_specific_level(stronger: Level, weaker: Level) -> None:
    for first, second in ((stronger, weaker), (weaker, stronger)):
        resolution = resolve(
            [value(first.name, first, index=0), value(second.name, second, index=1)], CONTEXT
        )
        resolved = resolution.explain("conn")
        assert resolved is not None and resolved.winner is not None
        assert resolved.winner.value == stronger.name
        assert resolved.rule is DecidingRule.MORE_SPECIFIC_DIMENSION
        assert resolved.explanation == (
            f"{stronger.label} ({stronger.value}) is more specific than {weaker.label} ({weaker.value})"
        )
        loser = next(c for c in resolved.candidates if c.outcome == "lost")
        assert (loser.value.value, loser.rule) == (
            weaker.name,
            DecidingRule.MORE_SPECIFIC_DIMENSION,
        )
        assert not resolved.tie and not resolution.warnings


L = Level
MULTI_DIMENSION = [
    # (winner levels, loser levels, deciding rule)
    ((L.ENVIRONMENT, L.MACHINE_ROLE), (L.MACHINE_ROLE,), DecidingRule.MORE_DIMENSIONS),
    ((L.ENVIRONMENT, L.CHANNEL), (L.ENVIRONMENT,), DecidingRule.MORE_DIMENSIONS),
    (
        (L.ENVIRONMENT, L.CHANNEL, L.PROJECT),
        (L.ENVIRONMENT, L.CHANNEL),
        DecidingRule.MORE_DIMENSIONS,
    ),
    ((L.ENVIRONMENT,), (L.UNSCOPED,), DecidingRule.MORE_SPECIFIC_DIMENSION),
    ((L.MACHINE,), (L.ENVIRONMENT, L.CHANNEL), DecidingRule.MORE_SPECIFIC_DIMENSION),
    ((L.ACTION,), (L.MACHINE, L.TENANT, L.ENVIRONMENT), DecidingRule.MORE_SPECIFIC_DIMENSION),
    ((L.TENANT, L.ENVIRONMENT), (L.TENANT_TAG, L.CHANNEL), DecidingRule.MORE_SPECIFIC_DIMENSION),
    ((L.ENVIRONMENT, L.CHANNEL), (L.ENVIRONMENT, L.PROJECT), DecidingRule.MORE_SPECIFIC_DIMENSION),
    (
        (L.TARGETED_ROLE, L.ENVIRONMENT),
        (L.MACHINE_ROLE, L.ENVIRONMENT),
        DecidingRule.MORE_SPECIFIC_DIMENSION,
    ),
    ((L.MACHINE, L.PROCESS), (L.MACHINE,), DecidingRule.MORE_DIMENSIONS),
]


@pytest.mark.parametrize(
    ("winning", "losing", "rule"),
    MULTI_DIMENSION,
    ids=[
        f"{'+'.join(w.name.lower() for w in a)}-beats-{'+'.join(w.name.lower() for w in b)}"
        for a, b, _ in MULTI_DIMENSION
    ],
)
def test_multi_dimension_scopes_like_css(
    winning: tuple[Level, ...], losing: tuple[Level, ...], rule: DecidingRule
) -> None:
    for indexes in ((0, 1), (1, 0)):
        candidates = [
            value("win", *winning, index=indexes[0]),
            value("lose", *losing, index=indexes[1]),
        ]
        resolved = resolve(candidates, CONTEXT).explain("Conn")
        assert resolved is not None and resolved.winner is not None
        assert resolved.winner.value == "win"
        assert resolved.rule is rule
        assert resolved.explanation


def test_an_environment_and_role_value_beats_a_role_value_and_says_so() -> None:
    resolved = resolve(
        [value("role", L.MACHINE_ROLE), value("env+role", L.ENVIRONMENT, L.MACHINE_ROLE)], CONTEXT
    ).explain("Conn")
    assert resolved is not None
    assert resolved.explanation == (
        "target tag on the machine (4) + environment (7) is scoped on more dimensions than "
        "target tag on the machine (4)"
    )


def test_a_project_value_beats_an_equally_specific_library_set_value() -> None:
    for order in ((0, 1), (1, 0)):
        resolved = resolve(
            [
                value("library", L.ENVIRONMENT, index=order[0], source=LIBRARY),
                value("project", L.ENVIRONMENT, index=order[1]),
            ],
            CONTEXT,
        ).explain("Conn")
        assert resolved is not None and resolved.winner is not None
        assert (resolved.winner.value, resolved.rule, resolved.tie) == (
            "project",
            DecidingRule.PROJECT_OVER_LIBRARY_SET,
            False,
        )


def test_a_true_tie_is_broken_deterministically_with_a_warning() -> None:
    later_set = VariableSource(kind=SourceKind.LIBRARY_SET, id="LibraryVariableSets-2", order=1)
    resolution = resolve(
        [
            value("second set", L.ENVIRONMENT, source=later_set),
            value("first set", L.ENVIRONMENT, source=LIBRARY),
        ],
        CONTEXT,
    )
    resolved = resolution.explain("Conn")
    assert resolved is not None and resolved.winner is not None
    assert (resolved.winner.value, resolved.rule, resolved.tie) == (
        "first set",
        DecidingRule.LIBRARY_SET_ORDER,
        True,
    )
    assert resolution.warnings == (
        "Conn: equally specific: the library set included first wins (tie-break)",
    )

    resolution = resolve(
        [
            value("declared second", L.ENVIRONMENT, index=2),
            value("declared first", L.ENVIRONMENT, index=1),
        ],
        CONTEXT,
    )
    resolved = resolution.explain("Conn")
    assert resolved is not None and resolved.winner is not None
    assert (resolved.winner.value, resolved.rule, resolved.tie) == (
        "declared first",
        DecidingRule.DECLARATION_ORDER,
        True,
    )
    assert resolution.warnings


def test_system_variables_always_win() -> None:
    system = system_variable_values({"Cephalo.Environment.Name": "Production"})
    user = VariableValue(
        name="Octopus.Environment.Name", value="spoofed", scope=SCOPE_FOR_LEVEL[L.ACTION]
    )
    resolution = resolve([user, *system], CONTEXT)
    resolved = resolution.explain("octopus.environment.name")
    assert resolved is not None and resolved.winner is not None
    assert (resolved.winner.value, resolved.rule) == ("Production", DecidingRule.SYSTEM_VARIABLE)
    assert resolution.values()["Cephalo.Environment.Name"] == "Production"


def test_or_within_a_field_and_across_fields() -> None:
    scope = {
        ScopeField.ENVIRONMENT: frozenset({"Staging", "production"}),
        ScopeField.CHANNEL: frozenset({"default"}),
    }
    assert match_scope(VariableValue(name="a", value="b", scope=scope), CONTEXT).matched
    wrong_channel = scope | {ScopeField.CHANNEL: frozenset({"hotfix"})}
    missed = match_scope(VariableValue(name="a", value="b", scope=wrong_channel), CONTEXT)
    assert (missed.matched, missed.mismatch) == (False, ScopeField.CHANNEL)
    assert missed.reason == "scoped to Channel [hotfix] but this context has Channel [default]"


def test_a_value_scoped_to_a_field_absent_from_the_context_never_matches() -> None:
    runbook = ResolutionContext(environment="Production", process="runbook-1")
    channel_scoped = VariableValue(
        name="a",
        value="b",
        scope={
            ScopeField.CHANNEL: frozenset({"default"}),
            ScopeField.PROCESS: frozenset({"runbook-1"}),
        },
    )
    missed = match_scope(channel_scoped, runbook)
    assert (missed.matched, missed.mismatch) == (False, ScopeField.CHANNEL)
    assert missed.reason == "scoped to Channel [default] but this context has no Channel"


def test_roles_without_a_machine_match_the_steps_roles() -> None:
    server_side = ResolutionContext(step_roles=frozenset({"web"}))
    assert match_scope(value("x", L.TARGETED_ROLE), server_side).levels == (L.TARGETED_ROLE,)
    assert not match_scope(value("x", L.MACHINE_ROLE), server_side).matched


def test_the_explanation_lists_matched_and_rejected_candidates() -> None:
    staging = VariableValue(
        name="Conn",
        value="staging",
        scope={ScopeField.ENVIRONMENT: frozenset({"Staging"})},
        declaration_index=3,
    )
    resolution = resolve(
        [value("unscoped", index=0), value("prod", L.ENVIRONMENT, index=1), staging], CONTEXT
    )
    resolved = resolution.explain("CONN")
    assert resolved is not None
    assert [(c.value.value, c.outcome) for c in resolved.candidates] == [
        ("prod", "won"),
        ("unscoped", "lost"),
        ("staging", "rejected"),
    ]
    assert [c.value.value for c in resolved.matched] == ["prod", "unscoped"]
    (rejected,) = resolved.rejected
    assert (rejected.mismatch, rejected.reason) == (
        ScopeField.ENVIRONMENT,
        "scoped to Environment [Staging] but this context has Environment [Production]",
    )
    won = resolved.candidates[0]
    assert won.levels == (L.ENVIRONMENT,)
    assert (
        won.reason
        == "matched at environment (7); environment (7) is more specific than unscoped (11)"
    )


def test_a_variable_with_no_applicable_value_is_explained_but_not_set() -> None:
    staging = VariableValue(
        name="Conn", value="staging", scope={ScopeField.ENVIRONMENT: frozenset({"Staging"})}
    )
    resolution = resolve([staging], CONTEXT)
    resolved = resolution.explain("Conn")
    assert resolved is not None
    assert (resolved.winner, resolved.rule) == (None, DecidingRule.NO_MATCH)
    assert resolution.values() == {}


def test_only_match_and_sensitive_values() -> None:
    secret = VariableValue(name="Password", value="hunter22", is_sensitive=True)
    resolution = resolve([secret, value("x", L.ENVIRONMENT)], CONTEXT)
    assert resolution.explain("password").rule is DecidingRule.ONLY_MATCH  # type: ignore[union-attr]
    assert resolution.sensitive_values() == frozenset({"hunter22"})
    assert resolution.values() == {"Password": "hunter22", "Conn": "x"}


def test_library_sets_cannot_be_scoped_to_steps_or_channels() -> None:
    bad = value("x", L.ACTION, L.CHANNEL, source=LIBRARY)
    assert scope_problems(bad) == [
        "a library variable set value cannot be scoped to Action",
        "a library variable set value cannot be scoped to Channel",
    ]
    assert scope_problems(value("x", L.ACTION)) == []
